"""Which training recipe fits: DeepSpeed ZeRO-3's memory estimate for full fine-tuning, as a pure function.

The formulas are DeepSpeed's `estimate_zero3_model_states_mem_needs` (deepspeed/runtime/zero/stage3.py,
deepspeed 0.19.8), repeated here so the estimate needs neither DeepSpeed nor a GPU (`zero3_model_states_mem`
returns the same three numbers; tests/test_one_gpu.py compares them with DeepSpeed's function where it is
installed). With P parameters, L the largest layer's (a module's own parameters), G GPUs in all over
`nodes` nodes, margin m (1.5) and `zero_init` (accelerate's `zero3_init_flag: true`), in bytes:

| recipe | GPU per device | CPU per node |
|---|---|---|
| `zero3` (no offload) | 4L + 18P/G | 4L * GPUs per node * m |
| `zero3_offload_optimizer` | 4L + 2P/G | 16P/nodes * m |
| `zero3_offload_all` (optimizer and parameters) | 4L | 18P/nodes * m |

DeepSpeed prints these divided by 2**30 and calls them GB: they are GiB, and so are all numbers here.
Model states only: activations and the rollouts' generation cache come on top (`gpu_reserve_gib`), and the
process itself needs CPU memory (`cpu_reserve_gib`).

Frozen parameters (the Omni thinker's vision tower) hold no gradient and no optimizer state: they are left
out of P and counted as their bf16 copy alone (2 bytes each: spread over the GPUs, or on the CPU with the
margin when parameters are offloaded). With `frozen_params=0` every number is DeepSpeed's.

Qwen2.5-Omni-7B's thinker (counted from its config on the meta device, `qwen25_omni_7b_thinker_size`):
8.93 B parameters, of which the vision tower's 0.68 B are frozen, largest layer the 152,064 x 3,584
embedding (545 M). One GPU: no offload 141.7 GiB (does not fit a 141 GB H200), optimizer offload 18.7 GiB
GPU + 184.5 GiB CPU, both offloaded 2.0 GiB GPU + 209.5 GiB CPU; two GPUs without offload 71.9 GiB each
(the paper's 2 H200). DeepSpeed's formula on P = 8.3 B with nothing frozen gives issue 22's 141 / 17.5 + 186
/ 2 + 209 / 72 GB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 2**30
RECIPES = ("zero3", "zero3_offload_optimizer", "zero3_offload_all")
GPU_RESERVE_GIB = 16.0  # activations (gradient checkpointing) + 16 rollouts' KV cache of 128 tokens, 7B model
CPU_RESERVE_GIB = 8.0  # the training process itself (Python, tokenizer, dataset, pinned buffers)


def zero3_model_states_mem(
    total_params: int,
    largest_layer_params: int,
    num_gpus_per_node: int = 1,
    num_nodes: int = 1,
    cpu_offload: bool = True,
    cpu_offload_params: bool = True,
    zero_init: bool = True,
    additional_buffer_factor: float = 1.5,
) -> tuple[int, int, int]:
    """DeepSpeed's `estimate_zero3_model_states_mem_needs`, line for line: (CPU bytes per node, GPU bytes per
    GPU, largest layer bytes)."""
    total_gpus = num_nodes * num_gpus_per_node
    gpus_factor = 1 / num_nodes
    largest_layer_memory = 4 * largest_layer_params
    if cpu_offload:
        if cpu_offload_params:
            gpu_mem = largest_layer_memory
            if zero_init:
                cpu_mem = total_params * 18 * gpus_factor * additional_buffer_factor
            else:
                cpu_mem = total_params * max(4 * num_gpus_per_node, 18 * gpus_factor) * additional_buffer_factor
        else:
            gpu_mem = largest_layer_memory + int(2 * total_params / total_gpus)
            if zero_init:
                cpu_mem = total_params * 16 * gpus_factor * additional_buffer_factor
            else:
                cpu_mem = total_params * max(4 * num_gpus_per_node, 16 * gpus_factor) * additional_buffer_factor
    else:
        gpu_mem = largest_layer_memory + int(18 * total_params / total_gpus)
        if zero_init:
            cpu_mem = largest_layer_params * 4 * num_gpus_per_node * additional_buffer_factor
        else:
            cpu_mem = total_params * 4 * num_gpus_per_node * additional_buffer_factor
    return int(cpu_mem), int(gpu_mem), largest_layer_memory


@dataclass(frozen=True)
class ModelSize:
    """Parameters of a model: all of them, the largest layer's (DeepSpeed's `model_to_params`), the frozen
    ones (no gradient, no optimizer state), and where the count comes from."""

    total_params: int
    largest_layer_params: int
    frozen_params: int = 0
    source: str = ""

    @property
    def trained_params(self) -> int:
        return self.total_params - self.frozen_params


@dataclass(frozen=True)
class Estimate:
    recipe: str
    gpu_gib: float  # model states per GPU
    cpu_gib: float  # model states per node
    fits_gpu: bool
    fits_cpu: bool

    @property
    def fits(self) -> bool:
        return self.fits_gpu and self.fits_cpu


@dataclass(frozen=True)
class RecipeChoice:
    """The first recipe of `RECIPES` that fits (least offload: fastest), or None with `message` saying why."""

    recipe: str | None
    estimates: tuple[Estimate, ...]
    gpus_per_node: int
    nodes: int
    gpu_mem_gib: float
    cpu_mem_gib: float
    gpu_reserve_gib: float
    cpu_reserve_gib: float
    size: ModelSize
    min_cpu_gib_one_gpu: float = 0.0  # CPU memory the cheapest offload recipe needs on this GPU count
    min_gpus_no_offload: int | None = None  # GPUs of this size that hold it without offload
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        head = (
            f"DeepSpeed ZeRO-3 estimate (model states, 1.5x margin; GiB) for {self.size.total_params / 1e9:.2f} B "
            f"parameters ({self.size.trained_params / 1e9:.2f} B trained, {self.size.frozen_params / 1e9:.2f} B frozen; "  # noqa: E501
            f"largest layer {self.size.largest_layer_params / 1e6:.0f} M) on {self.nodes} node(s) x "
            f"{self.gpus_per_node} GPU(s) of {self.gpu_mem_gib:.0f} GiB, {self.cpu_mem_gib:.0f} GiB CPU memory per node; "  # noqa: E501
            f"+{self.gpu_reserve_gib:g} GiB per GPU for activations and rollouts, +{self.cpu_reserve_gib:g} GiB CPU "
            "for the process"
        )
        rows = [
            f"  {e.recipe:<24} GPU {e.gpu_gib:7.1f}  CPU {e.cpu_gib:7.1f}  "
            + (
                "fits"
                if e.fits
                else "does not fit ("
                + ", ".join(w for w, ok in (("GPU", e.fits_gpu), ("CPU", e.fits_cpu)) if not ok)
                + ")"
            )
            for e in self.estimates
        ]
        return "\n".join([head, *rows])


def estimate(
    size: ModelSize, recipe: str, gpus_per_node: int = 1, nodes: int = 1, margin: float = 1.5
) -> tuple[float, float]:
    """(GPU GiB per GPU, CPU GiB per node) of `recipe` for `size`: DeepSpeed's formula on the trained
    parameters, plus the frozen ones' bf16 copy."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    offload_opt = recipe != "zero3"
    offload_params = recipe == "zero3_offload_all"
    cpu, gpu, _ = zero3_model_states_mem(
        size.trained_params, size.largest_layer_params, gpus_per_node, nodes, offload_opt, offload_params, True, margin
    )
    frozen = 2 * size.frozen_params
    if offload_params:
        cpu += frozen * margin / nodes
    else:
        gpu += frozen / (gpus_per_node * nodes)
    return gpu / GIB, cpu / GIB


def resolve_recipe(
    size: ModelSize,
    gpus_per_node: int,
    gpu_mem_gib: float,
    cpu_mem_gib: float,
    nodes: int = 1,
    gpu_reserve_gib: float = GPU_RESERVE_GIB,
    cpu_reserve_gib: float = CPU_RESERVE_GIB,
) -> RecipeChoice:
    """The full fine-tuning recipe for `size` on `nodes` x `gpus_per_node` GPUs of `gpu_mem_gib` with
    `cpu_mem_gib` CPU memory per node: "zero3" when the model states fit the GPUs, else
    "zero3_offload_optimizer", else "zero3_offload_all", else None (read `refusal_message`)."""
    if gpus_per_node < 1 or nodes < 1:
        raise ValueError(f"needs at least one GPU and one node, got {gpus_per_node} GPU(s) x {nodes} node(s)")
    ests = []
    for r in RECIPES:
        g, c = estimate(size, r, gpus_per_node, nodes)
        ests.append(Estimate(r, g, c, g + gpu_reserve_gib <= gpu_mem_gib, c + cpu_reserve_gib <= cpu_mem_gib))
    chosen = next((e.recipe for e in ests if e.fits), None)
    min_gpus = next(
        (n for n in range(2, 65) if estimate(size, "zero3", n, 1)[0] + gpu_reserve_gib <= gpu_mem_gib), None
    )
    offload_fits_gpu = [e for e in ests if e.recipe != "zero3" and e.fits_gpu]
    min_cpu = min((e.cpu_gib + cpu_reserve_gib for e in offload_fits_gpu), default=float("inf"))
    return RecipeChoice(
        chosen,
        tuple(ests),
        gpus_per_node,
        nodes,
        gpu_mem_gib,
        cpu_mem_gib,
        gpu_reserve_gib,
        cpu_reserve_gib,
        size,
        min_cpu,
        min_gpus,
    )


def refusal_message(choice: RecipeChoice, model: str, lora_hint: str) -> str:
    """Why full fine-tuning cannot run here, the numbers, and the two ways on."""
    more_gpus = (
        f"{choice.min_gpus_no_offload} GPUs of {choice.gpu_mem_gib:.0f} GiB (plain ZeRO-3, as the paper's 2 H200)"
        if choice.min_gpus_no_offload
        else "more or larger GPUs"
    )
    ram = (
        f"a machine with >= {choice.min_cpu_gib_one_gpu:.0f} GiB of CPU memory (ZeRO-3 with CPU offload, the "
        "paper's mathematics, slower)"
        if choice.min_cpu_gib_one_gpu != float("inf")
        else "larger GPUs"
    )
    return (
        f"Full fine-tuning of {model} (the paper's method) does not fit here.\n{choice.table()}\n"
        f"Choose one: (1) {ram}, or {more_gpus}; (2) LoRA, explicitly: {lora_hint}. "
        "LoRA is not the paper's method and is never chosen silently."
    )


# Qwen2.5-Omni-7B's thinker, from the dimensions of its config.json (Hub id Qwen/Qwen2.5-Omni-7B): text 3584 x
# 28 layers (intermediate 18,944, 28 heads, 4 KV heads, vocabulary 152,064, untied lm_head), audio encoder
# 1280 x 32 layers, vision tower 1280 x 32 (intermediate 3420, 16 heads, out 3584). Counted on the meta
# device (tests/test_one_gpu.py repeats the count from the config); the vision tower is frozen in training.
QWEN25_OMNI_7B_THINKER = ModelSize(
    total_params=8_931_813_888,
    largest_layer_params=152_064 * 3_584,
    frozen_params=676_550_144,
    source="Qwen2.5-Omni-7B thinker dimensions, counted on the meta device",
)
KNOWN_SIZES = {"Qwen/Qwen2.5-Omni-7B": QWEN25_OMNI_7B_THINKER}


def count_parameters(model: object, frozen_prefixes: tuple[str, ...] = ()) -> ModelSize:
    """DeepSpeed's `model_to_params` on a built model (the meta device is enough): parameters counted once
    each (by identity, since meta tensors share one data pointer), the largest module's own parameters, and
    those under `frozen_prefixes`."""
    total = sum(p.numel() for p in model.parameters())  # type: ignore[attr-defined]
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())  # type: ignore[attr-defined]
    seen: set[int] = set()
    frozen = 0
    for name, p in model.named_parameters():  # type: ignore[attr-defined]
        if id(p) not in seen and any(name.startswith(f) for f in frozen_prefixes):
            frozen += p.numel()
        seen.add(id(p))
    return ModelSize(total, largest, frozen, source="counted on the meta device")


def model_size(model: str) -> ModelSize | None:
    """The parameter counts of `model` without its weights: the known table, else its config (a local
    folder or the Hugging Face cache) built on the meta device; None when no config can be read."""
    if model in KNOWN_SIZES:
        return KNOWN_SIZES[model]
    try:
        from accelerate import init_empty_weights
        from transformers import AutoConfig, AutoModelForCausalLM

        cfg = AutoConfig.from_pretrained(model)
        with init_empty_weights():
            if cfg.model_type == "qwen2_5_omni":
                from transformers import Qwen2_5OmniThinkerForConditionalGeneration

                m = Qwen2_5OmniThinkerForConditionalGeneration._from_config(cfg.thinker_config)
                return count_parameters(m, ("model.visual.", "visual."))
            if cfg.model_type == "qwen2_5_omni_thinker":
                from transformers import Qwen2_5OmniThinkerForConditionalGeneration

                m = Qwen2_5OmniThinkerForConditionalGeneration._from_config(cfg)
                return count_parameters(m, ("model.visual.", "visual."))
            return count_parameters(AutoModelForCausalLM.from_config(cfg))
    except Exception:  # noqa: BLE001 - no config here (offline, embedded GGUF): no estimate
        return None
