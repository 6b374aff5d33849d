"""Building blocks shared by more than one family (transformer parts; audio: seanet, convnext1d, resnet1d, vocos, istft, weight_norm)."""
