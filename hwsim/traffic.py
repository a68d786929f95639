"""What each decode step asks of each memory level, and how long each piece of work takes.

Turns (model footprint, policy plan, placement, hardware) into numpy arrays: bytes by level, direction
and category per step; transfer service times and compute times per step and layer, which the simpy
engine replays. Everything is aggregated over streams with array operations: the engine never sees
individual bytes or streams, so its cost grows with steps x layers, not with bytes moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.config.experiment import Experiment
from hwsim.errors import HwsimInputError
from hwsim.geometry import ModelFootprint
from hwsim.kv import KvPlan
from hwsim.memory.transaction import DramTiming
from hwsim.policies import StatePlan
from hwsim.residency import Placement, place
from hwsim.sizing import kv_position_bytes, state_bytes
from hwsim.stack import expected_distinct_experts
from hwsim.units import flops_per_ns


@dataclass
class Traffic:
    """Arrays over steps (and layers where timing needs them). Bytes are totals over the batch."""

    steps: int
    layers: int
    bytes: dict[tuple[str, str, str], np.ndarray]   # (level, direction, category) -> (steps,)
    layer_read_ns: np.ndarray       # (steps, layers) DRAM service time of the layer's prefetch
    layer_write_ns: np.ndarray      # (steps, layers) DRAM service time of its write-back
    layer_compute_ns: np.ndarray    # (steps, layers)
    lm_read_ns: np.ndarray          # (steps,)
    lm_compute_ns: np.ndarray       # (steps,)
    deferred_read_ns: np.ndarray    # (steps,) gate_on current: spilled states read back after the LM head
    deferred_write_ns: np.ndarray   # (steps,) gate_on current: gated write-back after the LM head
    replay_passes: np.ndarray       # (steps,) int
    replay_layer_read_ns: np.ndarray   # (steps,) per pass and layer
    replay_layer_write_ns: np.ndarray
    replay_layer_compute_ns: np.ndarray
    layer_read_bytes: np.ndarray    # (steps, layers) DRAM bytes behind layer_read_ns (for conservation)
    layer_write_bytes: np.ndarray
    lm_read_bytes: np.ndarray
    deferred_read_bytes: np.ndarray
    deferred_write_bytes: np.ndarray
    replay_layer_read_bytes: np.ndarray
    replay_layer_write_bytes: np.ndarray
    actions: dict[str, np.ndarray] = field(default_factory=dict)  # energy actions per step
    read_latency_ns: float = 0.0
    write_to_read_ns: float = 0.0
    read_to_write_ns: float = 0.0
    refresh_interval_ns: float = float("inf")   # the queue places refreshes on the clock (DramTiming.refresh_ns)
    refresh_ns: float = 0.0
    low_writes: np.ndarray | None = None
    ssm_sram_share: np.ndarray | None = None
    placement: Placement | None = None
    # per layer and step, summed over the batch, before placement: what the state kernels move
    ssm_read_per_layer: np.ndarray | None = None     # (steps,)
    ssm_write_per_layer: np.ndarray | None = None
    conv_read_per_layer: np.ndarray | None = None
    conv_write_per_layer: np.ndarray | None = None
    quantised_elements_per_layer: np.ndarray | None = None   # (steps,) low-bit state elements (de)quantised
    kv_low_share: np.ndarray | None = None   # (steps,) share of KV bytes read stored at the low precision
    # the DRAM bytes of each part (weights, states, LM head, embeddings) behind the transfers: what the
    # detailed level splits a transfer into (`detailed_queue.TransferRequests`)
    dram_side: DramSide | None = None


def working_set_bytes(exp: Experiment, fp: ModelFootprint) -> float:
    """SRAM one layer needs to run at all: double-buffered weight tiles, and one stream's state and
    activations in and out at high precision. The batch runs through a layer stream by stream (or in
    small tiles), so its activations need not all be on chip at once."""
    policy = exp.policy
    elements = int((fp.stack.ssm_state_elements + fp.stack.linear_state_elements).max())
    one_state = float(state_bytes(elements, policy.high_bits, policy.group_size, policy.scale_bits))
    tile = exp.hardware.dma.weight_tile_bytes if exp.hardware.dma else 0
    return (2 * tile + 2 * one_state
            + 2 * fp.activation_bytes_per_stream_layer)


def recurrent_state_bytes(fp: ModelFootprint, policy, bits) -> np.ndarray:
    """One stream's recurrent states (SSM and linear-attention) of each layer at `bits`, (layers,)."""
    stack = fp.stack
    return (state_bytes(stack.ssm_state_elements, bits, policy.group_size, policy.scale_bits)
            + state_bytes(stack.linear_state_elements, bits, policy.group_size, policy.scale_bits))


def check_capacity(exp: Experiment, fp: ModelFootprint, *, file: str | None = None) -> float:
    """SRAM budget for residency; raises when the hardware cannot run this model at all."""
    hw, batch = exp.hardware, exp.workload.batch_size
    budget = hw.sram.capacity_bytes - hw.sram.reserved_bytes - working_set_bytes(exp, fp)
    if budget < 0:
        raise HwsimInputError(
            f"{hw.sram.capacity_bytes} bytes of SRAM cannot hold one layer's working set "
            f"({working_set_bytes(exp, fp):.0f} bytes: 2 weight tiles, one stream's state and "
            f"activations in and out) plus reserved {hw.sram.reserved_bytes}", file=file,
            key="hardware.sram.capacity_bytes", allowed="a larger SRAM or a smaller dma.weight_tile_bytes")
    policy = exp.policy
    if fp.hybrid:
        state = batch * float(recurrent_state_bytes(fp, policy, policy.high_bits).sum())
        conv = batch * float(fp.stack.conv_state_bytes_per_stream.sum())
        if fp.stack.has_kv and hw.dram is None:
            raise HwsimInputError("the KV cache of the attention layers streams from DRAM; this hardware "
                                  "has none", file=file, key="hardware.dram",
                                  allowed="hardware with a dram section, or a model without attention")
        if fp.stack.has_experts and hw.dram is None:
            raise HwsimInputError("routed expert weights stream from DRAM; this hardware has none", file=file,
                                  key="hardware.dram", allowed="hardware with a dram section")
    else:
        state = fp.n_layers * batch * float(state_bytes(fp.layer.ssm_state_elements, policy.high_bits,
                                                        policy.group_size, policy.scale_bits))
        conv = fp.n_layers * batch * fp.conv_state_bytes_per_stream_layer
    kv = kv_capacity_bytes(exp, fp)
    needed = fp.weight_bytes_total + state + conv + kv
    dram = hw.dram.capacity_bytes if hw.dram else 0
    if needed > budget + dram:
        raise HwsimInputError(
            f"model {exp.model.name} at batch {batch} needs {needed / 2**30:.2f} GiB (weights + states at "
            f"{policy.high_bits} bits" + (f" + KV cache {kv / 2**30:.2f} GiB" if kv else "") + ") but the "
            f"hardware has {(budget + dram) / 2**30:.2f} GiB of SRAM budget and DRAM", file=file, key="hardware",
            allowed="more DRAM stacks, a smaller model, batch or context")
    return budget


def kv_capacity_bytes(exp: Experiment, fp: ModelFootprint) -> float:
    """The KV cache at the end of the run (every slot at its largest context), at the model's KV
    precision: what DRAM must hold beside weights and states."""
    stack = fp.stack
    if not stack.has_kv:
        return 0.0
    w = exp.workload
    longest = np.array(w.context_tokens_per_stream, dtype=np.float64) + w.steps
    per_position = kv_position_bytes(stack.kv_elements_per_position, exp.model.kv_precision,
                                     exp.model.kv_group_size, exp.model.kv_scale_bits)
    positions = np.where(stack.kv_window[:, None] > 0, np.minimum(longest[None, :], stack.kv_window[:, None]),
                         longest[None, :])
    return float((per_position[:, None] * positions).sum())


@dataclass(frozen=True)
class StateBytes:
    """What the policy plan says the states and caches move, per step and layer, summed over the batch."""

    ssm_read: np.ndarray          # (steps, layers): every recurrent state (Mamba SSM, linear attention)
    ssm_write: np.ndarray
    checkpoint: np.ndarray        # (steps, layers)
    replay_n: np.ndarray          # (steps, batch) steps re-executed per slot
    replay_read: np.ndarray       # (steps,) per layer (speculative: pure Mamba stacks only)
    replay_write: np.ndarray
    passes: np.ndarray
    conv_reserved: np.ndarray     # (layers,) conv bytes placement reserves (activation precision)
    conv_read: np.ndarray         # (steps, layers)
    conv_write: np.ndarray
    high_one: np.ndarray          # (layers,) one stream's state at high / low precision
    low_one: np.ndarray
    low_writes: np.ndarray
    quant_elements: np.ndarray    # (steps, layers) elements (de)quantised
    kv_read: np.ndarray           # (steps, layers) KV cache read
    kv_write: np.ndarray          # (steps, layers) KV entries appended
    kv_positions: np.ndarray      # (steps, layers) cached positions read, summed over the batch
    kv_low_share: np.ndarray      # (steps,) share of KV bytes read that were stored at the low precision
    experts: np.ndarray           # (layers,) routed expert bytes read per step


@dataclass(frozen=True)
class DramSide:
    """Per (step, layer) bytes that miss SRAM, and the per-step extras."""

    weights: np.ndarray
    ssm_read: np.ndarray
    ssm_write: np.ndarray
    conv_read: np.ndarray
    conv_write: np.ndarray
    lm_head: np.ndarray
    embeddings: float
    activations: np.ndarray       # (layers,) on chip, one layer's batch activations
    spill: np.ndarray             # gate_on current: write-back buffer that SRAM cannot hold
    buffer_sram: float
    replay_weights: np.ndarray


def _by_layer(elements: np.ndarray, bits: np.ndarray, policy) -> np.ndarray:
    """(steps, layers) bytes of each layer's state of `elements` per stream at per-stream `bits`
    (steps, batch), summed over the batch: one evaluation per distinct state size."""
    out = np.zeros((bits.shape[0], len(elements)))
    for size in np.unique(elements[elements > 0]):
        column = state_bytes(int(size), bits, policy.group_size, policy.scale_bits).sum(axis=1)
        out[:, elements == size] = column[:, None]
    return out


def state_traffic(exp: Experiment, fp: ModelFootprint, plan: StatePlan, kv: KvPlan | None = None) -> StateBytes:
    """Bytes of the recurrent and conv states and the KV cache read and written per step and layer."""
    policy, batch, stack = exp.policy, exp.workload.batch_size, fp.stack
    steps = plan.write_bits.shape[0]
    gated = set(policy.gated_states)
    high = np.full_like(plan.write_bits, policy.high_bits)
    state_elements = stack.ssm_state_elements + stack.linear_state_elements
    gated_elements = (stack.ssm_state_elements * ("ssm" in gated)
                      + stack.linear_state_elements * ("linear_attention" in gated))
    ungated_elements = state_elements - gated_elements

    def states(bits: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        moved = _by_layer(gated_elements, bits, policy)
        return moved + _by_layer(ungated_elements, fixed, policy) if ungated_elements.any() else moved

    high_one = recurrent_state_bytes(fp, policy, policy.high_bits)
    low_one = (state_bytes(gated_elements, policy.low_bits, policy.group_size, policy.scale_bits)
               + state_bytes(ungated_elements, policy.high_bits, policy.group_size, policy.scale_bits))
    replay_n = plan.replay_steps
    one_high, one_low = float(high_one.max()), float(low_one.max())
    conv = batch * stack.conv_state_bytes_per_stream   # at activation precision: what placement reserves
    conv_gated = "conv" in gated
    if conv_gated:
        conv_read = _by_layer(stack.conv_state_elements, plan.read_bits, policy)
        conv_write = _by_layer(stack.conv_state_elements, plan.write_bits, policy)
    else:
        conv_read = conv_write = np.broadcast_to(conv, (steps, len(conv)))
    low_reads = (plan.read_bits < policy.high_bits).sum(axis=1)
    low_writes = (plan.write_bits < policy.high_bits).sum(axis=1)
    quantised_per_state = gated_elements + (stack.conv_state_elements if conv_gated else 0)
    quant = (low_reads + low_writes + (plan.checkpoint_bits > 0).sum(axis=1))[:, None] * quantised_per_state[None, :]
    zeros = np.zeros((steps, fp.n_layers))
    kv_read = kv_write = kv_positions = zeros
    kv_low_share = np.zeros(steps)
    if stack.has_kv:
        kv_read, kv_write, kv_positions, kv_quant, kv_low_share = kv_traffic(exp, fp, kv)
        quant = quant + kv_quant
    experts = stack.expert_bytes * expected_distinct_experts(stack.experts, stack.experts_per_token, batch)
    return StateBytes(
        ssm_read=states(plan.read_bits, high), ssm_write=states(plan.write_bits, high),
        checkpoint=_by_layer(gated_elements, plan.checkpoint_bits, policy), replay_n=replay_n,
        replay_read=(replay_n * one_high).sum(axis=1),
        replay_write=np.where(replay_n > 0, (replay_n - 1) * one_high + one_low, 0.0).sum(axis=1),
        passes=replay_n.max(axis=1), conv_reserved=conv, conv_read=conv_read, conv_write=conv_write,
        high_one=high_one, low_one=low_one, low_writes=low_writes, quant_elements=quant,
        kv_read=kv_read, kv_write=kv_write, kv_positions=kv_positions, kv_low_share=kv_low_share,
        experts=experts)


def kv_traffic(exp: Experiment, fp: ModelFootprint, kv: KvPlan):
    """KV bytes read (every cached position in the window, each at the precision it was written in)
    and appended (one position per stream) per step and layer; positions read; (de)quantised elements."""
    model, policy, stack = exp.model, exp.policy, fp.stack
    attention = np.flatnonzero(stack.kv_elements_per_position)
    steps = kv.context.shape[0]
    shape = (steps, fp.n_layers)
    read, write, positions, quant = (np.zeros(shape) for _ in range(4))
    low_read = np.zeros(steps)
    high_precision = model.kv_precision
    low_precision = policy.kv_low_precision if policy.gate_kv else high_precision
    int_high, int_low = not high_precision.startswith("fp"), not low_precision.startswith("fp")
    written_low = kv.low_written.sum(axis=1)
    for layer in attention:
        elements = stack.kv_elements_per_position[layer]
        window = int(stack.kv_window[layer])
        hi = float(kv_position_bytes(elements, high_precision, model.kv_group_size, model.kv_scale_bits))
        lo = float(kv_position_bytes(elements, low_precision, model.kv_group_size, model.kv_scale_bits))
        cached = np.minimum(kv.context, window) if window else kv.context
        low = kv.low_cached[window]
        n_cached, n_low = cached.sum(axis=1), low.sum(axis=1)
        read[:, layer] = (n_cached - n_low) * hi + n_low * lo
        low_read += n_low * lo
        n_new = kv.context.shape[1]
        write[:, layer] = (n_new - written_low) * hi + written_low * lo
        positions[:, layer] = n_cached
        quant[:, layer] = elements * ((n_cached - n_low + n_new - written_low) * int_high
                                      + (n_low + written_low) * int_low)
    total_read = read.sum(axis=1)
    share = np.divide(low_read, total_read, out=np.zeros(steps), where=total_read > 0)
    return read, write, positions, quant, share


def dram_side(exp: Experiment, fp: ModelFootprint, sb: StateBytes, placement: Placement) -> DramSide:
    """What misses SRAM, given where the placement keeps each category."""
    batch, steps = exp.workload.batch_size, len(sb.ssm_write)
    current = exp.policy.gate_on == "current"
    buffer_total = batch * float(sb.high_one.sum()) if current else 0.0
    buffer_sram = min(buffer_total, placement.spare_bytes)
    weights = fp.stack.weight_bytes[None, :] * (1 - placement.weights_sram)
    return DramSide(
        weights=weights, ssm_read=sb.ssm_read * (1 - placement.ssm_read_sram),
        ssm_write=sb.ssm_write * (1 - placement.ssm_write_sram),
        conv_read=sb.conv_read * (1 - placement.conv_sram),
        conv_write=sb.conv_write * (1 - placement.conv_sram),
        lm_head=fp.lm_head_bytes * (1 - placement.lm_head_sram),
        embeddings=batch * fp.embedding_bytes_per_token, activations=batch * fp.stack.activation_bytes_per_stream,
        spill=(buffer_total - buffer_sram) * np.ones(steps), buffer_sram=buffer_sram,
        replay_weights=sb.passes * weights.sum(axis=1))


def level_bytes(fp: ModelFootprint, sb: StateBytes, ds: DramSide, *, has_dram: bool) -> dict:
    """(level, direction, category) -> bytes per step. Weights and states fetched from DRAM land in
    SRAM buffers and are read from there by compute; every state passes through SRAM. The KV cache and
    routed experts stream from DRAM through SRAM (left out of the residency)."""
    layers, steps, passes = fp.n_layers, len(sb.ssm_write), sb.passes
    by = {}

    def put(level, direction, category, per_step):
        by[(level, direction, category)] = np.asarray(per_step, dtype=np.float64) * np.ones(steps)

    put("dram", "read", "weights", ds.weights.sum(axis=1))
    put("dram", "read", "lm_head", ds.lm_head)
    put("dram", "read", "embeddings", ds.embeddings)
    put("dram", "read", "ssm_state", ds.ssm_read.sum(axis=1))
    put("dram", "write", "ssm_state", ds.ssm_write.sum(axis=1))
    put("dram", "read", "conv_state", ds.conv_read.sum(axis=1))
    put("dram", "write", "conv_state", ds.conv_write.sum(axis=1))
    put("dram", "write", "checkpoint", sb.checkpoint.sum(axis=1))
    put("dram", "read", "replay", sb.replay_read * layers + ds.replay_weights)
    put("dram", "write", "replay", sb.replay_write * layers)
    put("dram", "write", "spill", ds.spill)
    put("dram", "read", "spill", ds.spill)
    put("sram", "write", "weights", ds.weights.sum(axis=1) + ds.replay_weights)
    put("sram", "read", "weights", fp.stack.weight_bytes.sum() * (1 + passes))
    put("sram", "write", "lm_head", ds.lm_head)
    put("sram", "read", "lm_head", fp.lm_head_bytes)
    put("sram", "read", "ssm_state", sb.ssm_read.sum(axis=1))
    put("sram", "write", "ssm_state", sb.ssm_write.sum(axis=1))
    put("sram", "read", "conv_state", sb.conv_read.sum(axis=1))
    put("sram", "write", "conv_state", sb.conv_write.sum(axis=1))
    put("sram", "write", "spill", ds.buffer_sram)
    put("sram", "read", "spill", ds.buffer_sram)
    put("sram", "read", "activations", ds.activations.sum() * (1 + passes) / 2)
    put("sram", "write", "activations", ds.activations.sum() * (1 + passes) / 2)
    if fp.stack.has_kv:   # read into SRAM and read there; the new entries written there, then out
        kv = sb.kv_read.sum(axis=1) + sb.kv_write.sum(axis=1)
        put("dram", "read", "kv_cache", sb.kv_read.sum(axis=1))
        put("dram", "write", "kv_cache", sb.kv_write.sum(axis=1))
        put("sram", "read", "kv_cache", kv)
        put("sram", "write", "kv_cache", kv)
    if fp.stack.has_experts:
        put("dram", "read", "experts", sb.experts.sum())
        put("sram", "write", "experts", sb.experts.sum())
        put("sram", "read", "experts", sb.experts.sum())
    return by if has_dram else {k: v for k, v in by.items() if k[0] != "dram"}


def build_traffic(exp: Experiment, fp: ModelFootprint, plan: StatePlan, dram: DramTiming | None,
                  budget_bytes: float, kv: KvPlan | None = None) -> Traffic:
    """Bytes (state_traffic, placement, dram_side, level_bytes), then the dataflow timing inputs and the
    energy actions of a chunk of steps."""
    hw, batch, layers = exp.hardware, exp.workload.batch_size, fp.n_layers
    sb = state_traffic(exp, fp, plan, kv)
    placement = place(hw.sram, budget_bytes=budget_bytes, layers=layers, ssm_write_per_layer=sb.ssm_write,
                      ssm_read_first=sb.ssm_read[0], ssm_max_per_layer=batch * sb.high_one,
                      conv_per_layer=sb.conv_reserved, weights_per_layer=fp.stack.weight_bytes,
                      lm_head_bytes=fp.lm_head_bytes)
    if hw.dram is None:
        everything_on_chip = (placement.ssm_write_sram.min(), placement.conv_sram.min(),
                              placement.weights_sram.min(), placement.lm_head_sram.min())
        if min(everything_on_chip) < 1.0:
            raise HwsimInputError("this SRAM-only hardware cannot hold the model's weights and states",
                                  key="hardware.dram", allowed="add a dram section or a larger sram")
    ds = dram_side(exp, fp, sb, placement)
    timing = dataflow_timing(exp, fp, sb, ds, dram)
    steps = len(sb.ssm_write)
    return Traffic(
        steps=steps, layers=layers, bytes=level_bytes(fp, sb, ds, has_dram=dram is not None), **timing,
        actions=energy_actions(exp, fp, sb, ds, dram), read_latency_ns=dram.read_latency_ns if dram else 0.0,
        write_to_read_ns=dram.write_to_read_ns if dram else 0.0,
        refresh_interval_ns=dram.refresh_interval_ns if dram else float("inf"),
        refresh_ns=dram.refresh_ns if dram else 0.0,
        read_to_write_ns=dram.read_to_write_ns if dram else 0.0, low_writes=sb.low_writes,
        ssm_sram_share=(placement.ssm_write_sram * sb.ssm_write).sum(axis=1)
        / np.maximum(sb.ssm_write.sum(axis=1), 1.0),
        placement=placement, ssm_read_per_layer=sb.ssm_read[:, 0], ssm_write_per_layer=sb.ssm_write[:, 0],
        conv_read_per_layer=np.asarray(sb.conv_read[:, 0], dtype=np.float64) * np.ones(steps),
        conv_write_per_layer=np.asarray(sb.conv_write[:, 0], dtype=np.float64) * np.ones(steps),
        quantised_elements_per_layer=sb.quant_elements[:, 0].astype(np.float64),
        kv_low_share=sb.kv_low_share, dram_side=ds)


def weight_run_bytes(exp: Experiment, fp: ModelFootprint) -> float:
    """Contiguous run of a weight transfer: a DMA tile, or (GPU) the whole matrix a GEMM reads."""
    return exp.hardware.dma.weight_tile_bytes if exp.hardware.dma else fp.weight_bytes_per_layer


def dataflow_timing(exp: Experiment, fp: ModelFootprint, sb: StateBytes, ds: DramSide,
                    dram: DramTiming | None) -> dict[str, np.ndarray]:
    """DRAM service of each layer's prefetch and write-back, and compute of each layer, for the fused
    dataflow pipeline (`hwsim.engine`); also the bytes behind each transfer, for conservation."""
    hw, batch, layers, steps = exp.hardware, exp.workload.batch_size, fp.n_layers, len(sb.ssm_write)
    current = exp.policy.gate_on == "current"
    stack = fp.stack

    def service(nbytes, run_bytes, pattern="strided"):
        if dram is None:
            return np.zeros(np.shape(nbytes))
        core = dram.service_ns(nbytes, run_bytes, pattern, refresh=False)   # the queue adds refresh on the clock
        return np.maximum(core, np.asarray(nbytes) / hw.dma.bandwidth_GBps) if hw.dma else core

    mean_read_run = np.maximum(sb.ssm_read / batch, 1.0)
    mean_write_run = np.maximum(sb.ssm_write / batch, 1.0)
    tile = weight_run_bytes(exp, fp)
    conv_read_run = np.maximum(sb.conv_read / batch, 1.0)
    conv_write_run = np.maximum(sb.conv_write / batch, 1.0)
    layer_read_ns = (service(ds.weights, tile) + service(ds.ssm_read, mean_read_run)
                     + service(ds.conv_read, conv_read_run))
    layer_read_bytes = ds.weights + ds.ssm_read + ds.conv_read
    ssm_write_layer = ds.ssm_write + sb.checkpoint
    spill_layer = ds.spill[:, None] / layers * np.ones((1, layers))
    conv_write_ns = service(ds.conv_write, conv_write_run)
    extra_write_ns = extra_write_bytes = 0.0
    if stack.has_kv:   # each stream's K and V per KV head lie in runs over its positions
        segments = np.maximum(batch * stack.kv_segments, 1.0)[None, :]
        layer_read_ns = layer_read_ns + service(sb.kv_read, np.maximum(sb.kv_read / segments, 1.0))
        layer_read_bytes = layer_read_bytes + sb.kv_read
        extra_write_ns = service(sb.kv_write, np.maximum(sb.kv_write / segments, 1.0))
        extra_write_bytes = sb.kv_write
    if stack.has_experts:
        expert_bytes = np.broadcast_to(sb.experts, (steps, layers))
        layer_read_ns = layer_read_ns + service(expert_bytes, tile)
        layer_read_bytes = layer_read_bytes + expert_bytes
    if current:
        layer_write_ns = service(spill_layer, mean_write_run) + conv_write_ns + extra_write_ns
        deferred_read_ns = service(ds.spill, mean_write_run[:, 0])
        deferred_write_ns = service(ssm_write_layer.sum(axis=1), mean_write_run[:, 0])
    else:
        layer_write_ns = service(ssm_write_layer, mean_write_run) + conv_write_ns + extra_write_ns
        deferred_read_ns = deferred_write_ns = np.zeros(steps)
    lm_read_ns = service(ds.lm_head * np.ones(steps), tile) + service(ds.embeddings * np.ones(steps),
                                                                      fp.embedding_bytes_per_token, "random")

    comp = hw.compute
    matmul_flops_per_ns = flops_per_ns(comp.matmul_TFLOPS[fp.weight_precision_key])
    if fp.weight_precision_key not in comp.mac_pJ:
        raise HwsimInputError(f"no MAC energy for {fp.weight_precision_key}", key="hardware.compute.mac_pJ",
                              allowed=", ".join(comp.mac_pJ))
    sram_layer_bytes = (stack.weight_bytes[None, :] + ds.weights + sb.ssm_read + sb.ssm_write
                        + (sb.conv_read + sb.conv_write) + ds.activations[None, :])
    matmul_ns = np.broadcast_to(batch * stack.matmul_flops_per_stream / matmul_flops_per_ns, (steps, layers))
    vector_ns = np.broadcast_to(batch * stack.vector_ops_per_stream / comp.vector_GFLOPS, (steps, layers))
    if stack.has_kv:   # scores and weighted sums over the cached positions, at the fp16 matmul rate
        attention_per_ns = flops_per_ns(comp.matmul_TFLOPS.get("fp16", comp.matmul_TFLOPS[fp.weight_precision_key]))
        matmul_ns = matmul_ns + sb.kv_positions * stack.attention_flops_per_position / attention_per_ns
        vector_ns = vector_ns + sb.kv_positions * stack.attention_vector_ops_per_position / comp.vector_GFLOPS
        sram_layer_bytes = sram_layer_bytes + 2 * (sb.kv_read + sb.kv_write)   # as level_bytes counts them
    if stack.has_experts:
        sram_layer_bytes = sram_layer_bytes + 2 * sb.experts[None, :]
    quant_ns = sb.quant_elements / comp.quantise_Gelem_per_s
    sram_ns = sram_layer_bytes / hw.sram.bandwidth_GBps
    layer_compute_ns = np.maximum.reduce([matmul_ns, vector_ns, quant_ns, sram_ns])
    lm_compute_ns = np.maximum(batch * fp.lm_head_flops_per_stream / matmul_flops_per_ns,
                               (fp.lm_head_bytes + ds.lm_head) / hw.sram.bandwidth_GBps) * np.ones(steps)

    # replay passes: each pass re-streams the layers for the streams still re-executing
    passes = sb.passes
    streams_per_pass = np.divide(sb.replay_n.sum(axis=1), passes, out=np.zeros(steps), where=passes > 0)
    replay_read_pass = np.divide(sb.replay_read, passes, out=np.zeros(steps), where=passes > 0)
    replay_write_pass = np.divide(sb.replay_write, passes, out=np.zeros(steps), where=passes > 0)
    mean_w_dram = ds.weights.mean(axis=1)
    one_high = float(sb.high_one.max())
    return {
        "layer_read_ns": layer_read_ns, "layer_write_ns": layer_write_ns, "layer_compute_ns": layer_compute_ns,
        "lm_read_ns": lm_read_ns, "lm_compute_ns": lm_compute_ns, "deferred_read_ns": deferred_read_ns,
        "deferred_write_ns": deferred_write_ns, "replay_passes": passes.astype(np.int64),
        "replay_layer_read_ns": service(mean_w_dram, tile) + service(replay_read_pass, one_high),
        "replay_layer_write_ns": service(replay_write_pass, one_high),
        "replay_layer_compute_ns": np.maximum(
            streams_per_pass * (fp.matmul_flops_per_stream_layer / matmul_flops_per_ns),
            streams_per_pass * float(stack.vector_ops_per_stream.max()) / comp.vector_GFLOPS),
        "layer_read_bytes": layer_read_bytes,
        "layer_write_bytes": (spill_layer if current else ssm_write_layer) + ds.conv_write + extra_write_bytes,
        "lm_read_bytes": ds.lm_head + ds.embeddings * np.ones(steps),
        "deferred_read_bytes": ds.spill if current else np.zeros(steps),
        "deferred_write_bytes": ssm_write_layer.sum(axis=1) if current else np.zeros(steps),
        "replay_layer_read_bytes": np.where(passes > 0, mean_w_dram + replay_read_pass, 0.0),
        "replay_layer_write_bytes": replay_write_pass}


def energy_actions(exp: Experiment, fp: ModelFootprint, sb: StateBytes, ds: DramSide,
                   dram: DramTiming | None) -> dict[str, np.ndarray]:
    """Action counts per step for the energy table: MACs, vector ops, (de)quantised elements, activates."""
    batch, layers, steps = exp.workload.batch_size, fp.n_layers, len(sb.ssm_write)
    stack = fp.stack
    gated = set(exp.policy.gated_states)
    elements = float((stack.ssm_state_elements * ("ssm" in gated)
                      + stack.linear_state_elements * ("linear_attention" in gated)).sum())
    replay_stream_steps = sb.replay_n.sum(axis=1)
    layer_matmul = float(stack.matmul_flops_per_stream.sum())
    layer_vector = float(stack.vector_ops_per_stream.sum())
    actions = {
        "matmul_macs": (batch * (layer_matmul + fp.lm_head_flops_per_stream)
                        + replay_stream_steps * layer_matmul) / 2 * np.ones(steps),
        "vector_ops": (batch + replay_stream_steps) * layer_vector * np.ones(steps),
        "quantise_elements": sb.quant_elements.sum(axis=1) + replay_stream_steps * elements,
    }
    if stack.has_kv:
        actions["matmul_macs"] = actions["matmul_macs"] + (
            sb.kv_positions * stack.attention_flops_per_position).sum(axis=1) / 2
        actions["vector_ops"] = actions["vector_ops"] + (
            sb.kv_positions * stack.attention_vector_ops_per_position).sum(axis=1)
    if dram is not None:
        tile = weight_run_bytes(exp, fp)
        mean_read_run = np.maximum(sb.ssm_read / batch, 1.0)
        mean_write_run = np.maximum(sb.ssm_write / batch, 1.0)
        act_read = (dram.activates(ds.weights.sum(axis=1) + ds.replay_weights + ds.lm_head, tile)
                    + dram.activates(ds.ssm_read.sum(axis=1) + sb.replay_read * layers, mean_read_run[:, 0])
                    + dram.activates(ds.conv_read.sum(axis=1), np.maximum(sb.conv_read[:, 0] / batch, 1.0))
                    + dram.activates(ds.embeddings * np.ones(steps), fp.embedding_bytes_per_token))
        act_write = (dram.activates(ds.ssm_write.sum(axis=1) + (sb.checkpoint.sum(axis=1) + sb.replay_write * layers),
                                    mean_write_run[:, 0])
                     + dram.activates(ds.conv_write.sum(axis=1), np.maximum(sb.conv_write[:, 0] / batch, 1.0))
                     + 2 * dram.activates(ds.spill, mean_write_run[:, 0]))
        alike = (np.all(sb.ssm_read == sb.ssm_read[:, :1]) and np.all(sb.ssm_write == sb.ssm_write[:, :1])
                 and np.all(sb.conv_read == sb.conv_read[:, :1]) and not (stack.has_kv or stack.has_experts))
        if not alike:   # layers differ: count each layer's transfers at its own run length
            act_read = (dram.activates(ds.weights.sum(axis=1) + ds.replay_weights + ds.lm_head, tile)
                        + dram.activates(ds.ssm_read, mean_read_run).sum(axis=1)
                        + dram.activates(ds.conv_read, np.maximum(sb.conv_read / batch, 1.0)).sum(axis=1)
                        + dram.activates(ds.embeddings * np.ones(steps), fp.embedding_bytes_per_token))
            act_write = (dram.activates(ds.ssm_write + sb.checkpoint, mean_write_run).sum(axis=1)
                         + dram.activates(ds.conv_write, np.maximum(sb.conv_write / batch, 1.0)).sum(axis=1)
                         + 2 * dram.activates(ds.spill, mean_write_run.max(axis=1)))
            if stack.has_kv:
                segments = np.maximum(batch * stack.kv_segments, 1.0)[None, :]
                act_read = act_read + dram.activates(sb.kv_read, np.maximum(sb.kv_read / segments, 1.0)).sum(axis=1)
                act_write = act_write + dram.activates(sb.kv_write, np.maximum(sb.kv_write / segments, 1.0)).sum(axis=1)
            if stack.has_experts:
                act_read = act_read + dram.activates(sb.experts.sum() * np.ones(steps), tile)
        actions["dram_activates"] = act_read + act_write
    return actions
