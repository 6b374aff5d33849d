import torch

from tok.nn.passes import cpu_inference_in_passes


def test_passes_split_batch_arguments_only_at_cpu_inference():
    seen = []

    def fn(x, cond, nothing):
        seen.append((x.shape[0], cond.shape[0], nothing))
        return x * cond[:, None]

    x, per_item, shared = torch.arange(10.0).view(5, 2), torch.arange(5.0), torch.tensor([3.0])
    with torch.inference_mode():
        out = cpu_inference_in_passes(fn, 2, x, per_item, None)
        assert seen == [(2, 2, None), (2, 2, None), (1, 1, None)]
        torch.testing.assert_close(out, x * per_item[:, None])
        seen.clear()
        cpu_inference_in_passes(fn, 0, x, shared, None)  # fewer than one item per pass: one each
        assert seen == [(1, 1, None)] * 5
    seen.clear()
    cpu_inference_in_passes(fn, 2, x, per_item, None)  # autograd on (training): one pass
    assert seen == [(5, 5, None)]
