"""Samplers for FlexTok's rectified-flow decoder: the official Euler loop and diffusers' schedulers.

The decoder predicts the velocity v = noise - x0 of x_t = t * noise + (1 - t) * x0, which is
diffusers' flow-matching convention (sigma = t, "flow_prediction"), so its schedulers step our
latents as they are. `euler` is the official sampler (t_i = i / steps, bit-for-bit as before);
the others trade extra network calls per step (`heun`) or a multistep history (`dpm++`, `unipc`)
for fewer steps. `benchmarks/flextok_samplers.py` measures steps against PSNR for each.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ...core import TokError

Velocity = Callable[[Tensor, float], Tensor]

SAMPLERS = ("euler", "heun", "dpm++", "unipc")


def _scheduler(name: str):
    import diffusers

    flow = {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 1.0}
    if name == "heun":
        return diffusers.FlowMatchHeunDiscreteScheduler()
    if name == "dpm++":  # second-order multistep DPM-Solver++
        return diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, **flow)
    if name == "unipc":
        return diffusers.UniPCMultistepScheduler(solver_order=2, **flow)
    raise TokError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")


def network_calls(sampler: str, steps: int) -> int:
    """Decoder evaluations one sample costs (Heun evaluates twice per step except the last)."""
    return 2 * steps - 1 if sampler == "heun" else steps


def integrate(velocity: Velocity, x: Tensor, steps: int, sampler: str = "euler") -> Tensor:
    """Integrate the flow from noise `x` at t = 1 to data at t = 0 in `steps` steps."""
    if steps < 1:
        raise TokError(f"steps must be at least 1, got {steps}")
    if sampler == "euler":
        for i in range(steps, 0, -1):
            x = x - velocity(x, i / steps) / steps
        return x
    scheduler = _scheduler(sampler)
    scheduler.set_timesteps(steps, device=x.device)
    # sigmas[i] is the noise level (our t) at timesteps[i] for every scheduler used here.
    for timestep, sigma in zip(scheduler.timesteps, scheduler.sigmas.tolist()):
        x = scheduler.step(velocity(x, sigma), timestep, x).prev_sample
    return x
