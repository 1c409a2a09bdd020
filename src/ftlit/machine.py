"""What ftlit decides from the machine it runs on, in one place. Each decision is a default a setting overrides:

- the precision (``--trainer.precision``): ``default_precision``, and ``check_precision`` refuses one the device
  cannot run well;
- TF32 matmuls on a GPU for what stays in float32: ``use_tf32``, set once by the ``ftlit`` command;
- the multiple batch lengths are rounded up to (``--data.pad_to_multiple_of``): ``default_pad_multiple``;
- DataLoader worker processes (``--data.num_workers``): ``default_num_workers``; pinned batches: ``pins_memory``;
- a fused optimizer kernel: ``fused_optimizer``;
- ftlit's CPU kernels (``--model.cpu_kernels``): its dropout on a CPU (``swaps_dropout``; the kernel is
  ftlit.training.dropout) and eager attention for the training batches where it is faster (``switches_attention``
  and ``trains_faster_eager``; the switch is ftlit.training.attention).

What a run chose is logged once when training starts and kept in results.json (``machine_record``, ``describe``).

Why eager attention: Hugging Face models attend with PyTorch's ``scaled_dot_product_attention`` (``sdpa``) by
default. On a CPU under bfloat16, plain matmul-softmax-matmul (``eager``) attention trains faster:
- With attention dropout (0.1 in BERT, DistilBERT, RoBERTa, MiniLM), PyTorch's CPU flash kernel cannot drop out, and
  sdpa falls back to its reference path, which computes in float32. Eager attention computes in bfloat16. Measured on
  a 2-core Xeon with AMX (torch 2.13, one training step, sdpa → eager): MiniLM 32 × 28 tokens 228 → 213 ms, 32 × 128
  1,050 → 946 ms, 16 × 384 4,788 → 4,368 ms; DistilBERT 32 × 128 1,894 → 1,705 ms, 8 × 384 2,780 → 2,330 ms.
- Without attention dropout, sdpa runs the flash kernel, whose backward pass is slow for short sequences: MiniLM
  32 × 28 242 → 155 ms, 32 × 128 815 → 436 ms, 16 × 192 509 → 474 ms, but 16 × 256 725 against 870 ms.
In float32 the two are level. Evaluation (no backward pass, no dropout) keeps the model's own kernel: there the
flash kernel is as fast or faster at every length.
"""

from pathlib import Path
from typing import Literal

import torch
from transformers import PreTrainedModel

from ftlit._transformers import attention_kernel, can_switch_attention
from ftlit.errors import FtlitError

#: ``--model.cpu_kernels``: ftlit's dropout and attention switch on a CPU, or torch's dropout and the model's attention
CpuKernels = Literal["ftlit", "torch"]

#: Without attention dropout, the longest (padded) batch that trains faster with eager attention on a CPU under bf16
EAGER_MAX_TOKENS = 192


def cpu_has_native_bf16() -> bool:
    """The CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16), as Linux lists them; False where unknown."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def default_precision() -> str:
    """bf16 mixed precision where the GPU has it, fp16 mixed on older GPUs; on a CPU, bf16 mixed where it computes
    in bfloat16 natively (measured: 1.56× faster training for MiniLM than fp32), fp32 elsewhere (emulated, slower)."""
    if not torch.cuda.is_available():
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run well: fp16 on a CPU, bf16 on a GPU without bfloat16."""
    if precision.startswith("16") and device.type == "cpu":
        raise FtlitError(
            f"--trainer.precision {precision} (float16) needs a CUDA GPU; on CPU use 32-true or bf16-mixed."
        )
    if precision.startswith("bf16") and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise FtlitError(
            f"--trainer.precision {precision}: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
            "use 16-mixed."
        )


def use_tf32() -> None:
    """TF32 matmuls on a GPU for whatever stays in fp32. Not torch.backends.cuda.matmul.fp32_precision: with that
    API set, torch.get_float32_matmul_precision() raises, and Lightning's Trainer.fit calls it."""
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")


def tf32_in_use() -> bool:
    """Whether float32 matmuls run in TF32 on this machine's GPU."""
    return torch.cuda.is_available() and torch.get_float32_matmul_precision() != "highest"


def default_pad_multiple() -> int:
    """What batch lengths are rounded up to by default: 8 with a GPU, whose tensor cores want it; 1 on a CPU, where
    the rounding is only padding (CoLA trains 1.07x faster without it on a 2-core CPU)."""
    return 8 if torch.cuda.is_available() else 1


def default_num_workers() -> int:
    """DataLoader worker processes by default: 4 with a GPU, which the main process alone cannot keep fed; none on
    a CPU, whose cores the training step needs."""
    return 4 if torch.cuda.is_available() else 0


def pins_memory() -> bool:
    """Whether loaders hand over batches in page-locked memory: with a GPU, so that copying them there does not make
    the host wait."""
    return torch.cuda.is_available()


def inference_device() -> str:
    """Where a tool runs a model outside a Trainer (``ftlit mine``'s retriever): the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def fused_optimizer(device: torch.device) -> bool:
    """Whether the optimizer runs one kernel for all parameters instead of a Python loop over them: faster on a GPU
    and on the CPU too."""
    return device.type in ("cuda", "cpu")


def swaps_dropout(device: torch.device, cpu_kernels: CpuKernels, compiled: bool) -> bool:
    """Whether training replaces torch's dropout with ftlit's CpuDropout: on a CPU, where torch's masks are slow
    to draw, with ftlit's kernels; a compiled model gets its compiler's own fused dropout."""
    return cpu_kernels == "ftlit" and device.type == "cpu" and not compiled


def switches_attention(
    model: PreTrainedModel, cpu_kernels: CpuKernels, kernel_chosen: bool, compiled: bool, checkpointed: bool
) -> bool:
    """Whether training batches may attend eagerly (each batch as ``trains_faster_eager`` says): with ftlit's
    kernels, for a model on its default sdpa that can change kernels. A kernel the user chose stays; a compiled
    model would compile anew at each switch; gradient checkpointing recomputes the forward pass in the backward,
    outside the switch, and must find the same operations."""
    if cpu_kernels != "ftlit" or kernel_chosen or compiled or checkpointed:
        return False
    return attention_kernel(model) == "sdpa" and can_switch_attention(model)


def trains_faster_eager(device_type: str, precision: str, sequence_length: int, dropout: float) -> bool:
    """Whether a training batch of ``sequence_length`` tokens (padded) runs faster with eager attention than with
    sdpa, on ``device_type`` at Lightning ``precision``, with attention ``dropout``."""
    if device_type != "cpu" or not precision.startswith("bf16"):
        return False
    return dropout > 0 or sequence_length <= EAGER_MAX_TOKENS


def machine_record(
    precision: str,
    pad_multiple: int,
    workers: int,
    fused: bool,
    cpu_kernels: CpuKernels,
    cpu_dropout_modules: int,
    attention_switch: bool,
) -> dict:
    """What a run chose for this machine: results.json's ``train.machine``."""
    return {
        "precision": precision,
        "tf32": tf32_in_use(),
        "pad_multiple": pad_multiple,
        "workers": workers,
        "fused_optimizer": fused,
        "cpu_kernels": cpu_kernels,
        "cpu_dropout_modules": cpu_dropout_modules,
        "attention_switch": attention_switch,
    }


def describe(record: dict) -> str:
    """``record`` (``machine_record``) as the one line a run logs when training starts."""
    if record["cpu_kernels"] == "torch":
        kernels = "CPU kernels torch: torch's dropout and the model's attention"
    else:
        swapped = record["cpu_dropout_modules"]
        dropout = f"{swapped} nn.Dropout -> CpuDropout" if swapped else "torch's dropout"
        attention = "eager attention for training batches" if record["attention_switch"] else "the model's attention"
        kernels = f"CPU kernels ftlit: {dropout}, {attention}"
    return (
        f"Machine: precision {record['precision']}, TF32 {'on' if record['tf32'] else 'off'}, batch lengths "
        f"rounded up to a multiple of {record['pad_multiple']}, {record['workers']} loader workers, "
        f"{'fused' if record['fused_optimizer'] else 'unfused'} optimizer; {kernels}"
    )
