"""Record LlamaGen c2i reference logits for tests/generators/test_llamagen_parity.py.

    python tests/data/make_llamagen_parity.py /path/to/LlamaGen

Runs the official `autoregressive/models/gpt.py` of a LlamaGen checkout (FoundationVision/LlamaGen,
commit ce98ec4) on CPU: a tiny c2i model (dim 64, 2 layers, 2 heads, vocab 100, 10 classes,
4x4 grid), seeded random weights with a non-zero output head, all dropouts 0. Saves its state
dict (official key names), the input ids, labels (one of them the null class) and its logits.
Only these outputs are kept; the official code is not.
"""

import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, sys.argv[1])
from autoregressive.models.gpt import ModelArgs, Transformer

torch.manual_seed(0)
args = ModelArgs(
    dim=64, n_layer=2, n_head=2, vocab_size=100, num_classes=10, block_size=16, cls_token_num=1,
    token_dropout_p=0.0, resid_dropout_p=0.0, ffn_dropout_p=0.0, class_dropout_prob=0.1,
)
model = Transformer(args)
torch.nn.init.normal_(model.output.weight, std=0.02)
for name, p in model.named_parameters():
    if name.endswith("norm.weight"):
        torch.nn.init.normal_(p, mean=1.0, std=0.1)  # norms away from ones, so their keys matter
model.train()
model.cls_embedding.dropout_prob = 0.0  # keep the null row, never drop labels
ids = torch.randint(0, 100, (3, 16))
labels = torch.tensor([3, 7, 10])  # 10 = the null class
with torch.no_grad():
    logits, _ = model(ids[:, :-1], labels, targets=ids)
state = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
save_file({**state, "ids": ids, "labels": labels, "logits": logits.contiguous()}, "tests/data/llamagen_parity.safetensors")
print(logits.shape, sorted(model.state_dict())[:6])
