"""Options that several `tok` commands share: the opt-in CPU inference paths (README, Speed)."""

from __future__ import annotations

import click

cpu_bf16_option = click.option(
    "--cpu-bf16", is_flag=True, help="The model's opt-in bf16 CPU inference (fast on CPUs with native bf16 only).")
cpu_int8_option = click.option(
    "--cpu-int8", is_flag=True, help="The model's opt-in int8 CPU inference (for CPUs without native bf16; changes outputs more).")
cpu_winograd_encoder_option = click.option(
    "--cpu-winograd-encoder", is_flag=True,
    help="Winograd 3x3 convolutions in the model's encoder on CPU (FlexTok, TokenFlow: faster; ids may rarely differ from the official).")
