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
from hwsim.memory.transaction import DramTiming
from hwsim.policies import StatePlan
from hwsim.residency import Placement, place
from hwsim.sizing import state_bytes
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
    low_writes: np.ndarray | None = None
    ssm_sram_share: np.ndarray | None = None
    placement: Placement | None = None
    # per layer and step, summed over the batch, before placement: what the state kernels move
    ssm_read_per_layer: np.ndarray | None = None     # (steps,)
    ssm_write_per_layer: np.ndarray | None = None
    conv_read_per_layer: np.ndarray | None = None
    conv_write_per_layer: np.ndarray | None = None
    quantised_elements_per_layer: np.ndarray | None = None   # (steps,) low-bit state elements (de)quantised
    # the DRAM bytes of each part (weights, states, LM head, embeddings) behind the transfers: what the
    # detailed level splits a transfer into (`detailed_queue.TransferRequests`)
    dram_side: DramSide | None = None


def working_set_bytes(exp: Experiment, fp: ModelFootprint) -> float:
    """SRAM one layer needs to run at all: double-buffered weight tiles, and one stream's state and
    activations in and out at high precision. The batch runs through a layer stream by stream (or in
    small tiles), so its activations need not all be on chip at once."""
    policy = exp.policy
    one_state = float(state_bytes(fp.layer.ssm_state_elements, policy.high_bits, policy.group_size,
                                  policy.scale_bits))
    tile = exp.hardware.dma.weight_tile_bytes if exp.hardware.dma else 0
    return (2 * tile + 2 * one_state
            + 2 * fp.activation_bytes_per_stream_layer)


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
    state = fp.n_layers * batch * float(state_bytes(fp.layer.ssm_state_elements, policy.high_bits,
                                                    policy.group_size, policy.scale_bits))
    needed = fp.weight_bytes_total + state + fp.n_layers * batch * fp.conv_state_bytes_per_stream_layer
    dram = hw.dram.capacity_bytes if hw.dram else 0
    if needed > budget + dram:
        raise HwsimInputError(
            f"model {exp.model.name} at batch {batch} needs {needed / 2**30:.2f} GiB (weights + states at "
            f"{policy.high_bits} bits) but the hardware has {(budget + dram) / 2**30:.2f} GiB of SRAM budget "
            f"and DRAM", file=file, key="hardware", allowed="more DRAM stacks, a smaller model or batch")
    return budget


@dataclass(frozen=True)
class StateBytes:
    """What the policy plan says the states move, per step, per layer, summed over the batch."""

    ssm_read: np.ndarray
    ssm_write: np.ndarray
    checkpoint: np.ndarray
    replay_n: np.ndarray          # (steps, batch) steps re-executed per slot
    replay_read: np.ndarray
    replay_write: np.ndarray
    passes: np.ndarray
    conv_reserved: float          # conv bytes placement reserves (activation precision)
    conv_read: np.ndarray
    conv_write: np.ndarray
    high_one: float               # one stream's state at high / low precision
    low_one: float
    low_writes: np.ndarray
    quant_elements: np.ndarray    # elements (de)quantised per layer


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
    activations: float            # on chip, one layer's batch activations
    spill: np.ndarray             # gate_on current: write-back buffer that SRAM cannot hold
    buffer_sram: float
    replay_weights: np.ndarray


def state_traffic(exp: Experiment, fp: ModelFootprint, plan: StatePlan) -> StateBytes:
    """Bytes of the SSM and conv states read and written per step and layer, from the plan."""
    policy, batch = exp.policy, exp.workload.batch_size
    steps = plan.write_bits.shape[0]
    elements = fp.layer.ssm_state_elements

    def per_stream(bits: np.ndarray) -> np.ndarray:
        return state_bytes(elements, bits, policy.group_size, policy.scale_bits)

    high_one = float(per_stream(policy.high_bits))
    low_one = float(per_stream(policy.low_bits))
    replay_n = plan.replay_steps
    conv = batch * fp.conv_state_bytes_per_stream_layer  # at activation precision: what placement reserves
    if policy.gate_conv_state:
        conv_elements = fp.layer.conv_state_elements
        conv_read = state_bytes(conv_elements, plan.read_bits, policy.group_size, policy.scale_bits).sum(axis=1)
        conv_write = state_bytes(conv_elements, plan.write_bits, policy.group_size, policy.scale_bits).sum(axis=1)
    else:
        conv_read = conv_write = np.full(steps, conv)
    low_reads = (plan.read_bits < policy.high_bits).sum(axis=1)
    low_writes = (plan.write_bits < policy.high_bits).sum(axis=1)
    quantised_per_state = elements + (fp.layer.conv_state_elements if policy.gate_conv_state else 0)
    return StateBytes(
        ssm_read=per_stream(plan.read_bits).sum(axis=1), ssm_write=per_stream(plan.write_bits).sum(axis=1),
        checkpoint=per_stream(plan.checkpoint_bits).sum(axis=1), replay_n=replay_n,
        replay_read=(replay_n * high_one).sum(axis=1),
        replay_write=np.where(replay_n > 0, (replay_n - 1) * high_one + low_one, 0.0).sum(axis=1),
        passes=replay_n.max(axis=1), conv_reserved=conv, conv_read=conv_read, conv_write=conv_write,
        high_one=high_one, low_one=low_one, low_writes=low_writes,
        quant_elements=(low_reads + low_writes + (plan.checkpoint_bits > 0).sum(axis=1)) * quantised_per_state)


def dram_side(exp: Experiment, fp: ModelFootprint, sb: StateBytes, placement: Placement) -> DramSide:
    """What misses SRAM, given where the placement keeps each category."""
    batch, layers, steps = exp.workload.batch_size, fp.n_layers, len(sb.ssm_write)
    current = exp.policy.gate_on == "current"
    buffer_total = layers * batch * sb.high_one if current else 0.0
    buffer_sram = min(buffer_total, placement.spare_bytes)
    weights = fp.weight_bytes_per_layer * (1 - placement.weights_sram)
    return DramSide(
        weights=weights, ssm_read=sb.ssm_read[:, None] * (1 - placement.ssm_read_sram),
        ssm_write=sb.ssm_write[:, None] * (1 - placement.ssm_write_sram),
        conv_read=sb.conv_read[:, None] * (1 - placement.conv_sram),
        conv_write=sb.conv_write[:, None] * (1 - placement.conv_sram),
        lm_head=fp.lm_head_bytes * (1 - placement.lm_head_sram),
        embeddings=batch * fp.embedding_bytes_per_token, activations=batch * fp.activation_bytes_per_stream_layer,
        spill=(buffer_total - buffer_sram) * np.ones(steps), buffer_sram=buffer_sram,
        replay_weights=sb.passes * weights.sum(axis=1))


def level_bytes(fp: ModelFootprint, sb: StateBytes, ds: DramSide, *, has_dram: bool) -> dict:
    """(level, direction, category) -> bytes per step. Weights and states fetched from DRAM land in
    SRAM buffers and are read from there by compute; every state passes through SRAM."""
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
    put("dram", "write", "checkpoint", sb.checkpoint * layers)
    put("dram", "read", "replay", sb.replay_read * layers + ds.replay_weights)
    put("dram", "write", "replay", sb.replay_write * layers)
    put("dram", "write", "spill", ds.spill)
    put("dram", "read", "spill", ds.spill)
    put("sram", "write", "weights", ds.weights.sum(axis=1) + ds.replay_weights)
    put("sram", "read", "weights", layers * fp.weight_bytes_per_layer * (1 + passes))
    put("sram", "write", "lm_head", ds.lm_head)
    put("sram", "read", "lm_head", fp.lm_head_bytes)
    put("sram", "read", "ssm_state", sb.ssm_read * layers)
    put("sram", "write", "ssm_state", sb.ssm_write * layers)
    put("sram", "read", "conv_state", sb.conv_read * layers)
    put("sram", "write", "conv_state", sb.conv_write * layers)
    put("sram", "write", "spill", ds.buffer_sram)
    put("sram", "read", "spill", ds.buffer_sram)
    put("sram", "read", "activations", ds.activations * layers * (1 + passes) / 2)
    put("sram", "write", "activations", ds.activations * layers * (1 + passes) / 2)
    return by if has_dram else {k: v for k, v in by.items() if k[0] != "dram"}


def build_traffic(exp: Experiment, fp: ModelFootprint, plan: StatePlan, dram: DramTiming | None,
                  budget_bytes: float) -> Traffic:
    """Bytes (state_traffic, placement, dram_side, level_bytes), then the dataflow timing inputs and the
    energy actions of a chunk of steps."""
    hw, batch, layers = exp.hardware, exp.workload.batch_size, fp.n_layers
    sb = state_traffic(exp, fp, plan)
    placement = place(hw.sram, budget_bytes=budget_bytes, layers=layers, ssm_write_per_layer=sb.ssm_write,
                      ssm_read_first=float(sb.ssm_read[0]), ssm_max_per_layer=batch * sb.high_one,
                      conv_per_layer=sb.conv_reserved, weights_per_layer=fp.weight_bytes_per_layer,
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
        read_to_write_ns=dram.read_to_write_ns if dram else 0.0, low_writes=sb.low_writes,
        ssm_sram_share=(placement.ssm_write_sram * sb.ssm_write[:, None]).sum(axis=1)
        / np.maximum(sb.ssm_write * layers, 1.0),
        placement=placement, ssm_read_per_layer=sb.ssm_read, ssm_write_per_layer=sb.ssm_write,
        conv_read_per_layer=np.asarray(sb.conv_read, dtype=np.float64) * np.ones(steps),
        conv_write_per_layer=np.asarray(sb.conv_write, dtype=np.float64) * np.ones(steps),
        quantised_elements_per_layer=sb.quant_elements.astype(np.float64), dram_side=ds)


def weight_run_bytes(exp: Experiment, fp: ModelFootprint) -> float:
    """Contiguous run of a weight transfer: a DMA tile, or (GPU) the whole matrix a GEMM reads."""
    return exp.hardware.dma.weight_tile_bytes if exp.hardware.dma else fp.weight_bytes_per_layer


def dataflow_timing(exp: Experiment, fp: ModelFootprint, sb: StateBytes, ds: DramSide,
                    dram: DramTiming | None) -> dict[str, np.ndarray]:
    """DRAM service of each layer's prefetch and write-back, and compute of each layer, for the fused
    dataflow pipeline (`hwsim.engine`); also the bytes behind each transfer, for conservation."""
    hw, batch, layers, steps = exp.hardware, exp.workload.batch_size, fp.n_layers, len(sb.ssm_write)
    current = exp.policy.gate_on == "current"

    def service(nbytes, run_bytes, pattern="strided"):
        if dram is None:
            return np.zeros(np.shape(nbytes))
        core = dram.service_ns(nbytes, run_bytes, pattern)
        return np.maximum(core, np.asarray(nbytes) / hw.dma.bandwidth_GBps) if hw.dma else core

    mean_read_run = np.maximum(sb.ssm_read / batch, 1.0)[:, None]
    mean_write_run = np.maximum(sb.ssm_write / batch, 1.0)[:, None]
    tile = weight_run_bytes(exp, fp)
    conv_read_run = np.maximum(sb.conv_read / batch, 1.0)
    conv_write_run = np.maximum(sb.conv_write / batch, 1.0)
    layer_read_ns = (service(ds.weights, tile) + service(ds.ssm_read, mean_read_run)
                     + service(ds.conv_read, conv_read_run[:, None]))
    ssm_write_layer = ds.ssm_write + sb.checkpoint[:, None] * np.ones((1, layers))
    spill_layer = ds.spill[:, None] / layers * np.ones((1, layers))
    conv_write_ns = service(ds.conv_write, conv_write_run[:, None])
    if current:
        layer_write_ns = service(spill_layer, mean_write_run) + conv_write_ns
        deferred_read_ns = service(ds.spill, mean_write_run[:, 0])
        deferred_write_ns = service(ssm_write_layer.sum(axis=1), mean_write_run[:, 0])
    else:
        layer_write_ns = service(ssm_write_layer, mean_write_run) + conv_write_ns
        deferred_read_ns = deferred_write_ns = np.zeros(steps)
    lm_read_ns = service(ds.lm_head * np.ones(steps), tile) + service(ds.embeddings * np.ones(steps),
                                                                      fp.embedding_bytes_per_token, "random")

    comp = hw.compute
    matmul_flops_per_ns = flops_per_ns(comp.matmul_TFLOPS[fp.weight_precision_key])
    if fp.weight_precision_key not in comp.mac_pJ:
        raise HwsimInputError(f"no MAC energy for {fp.weight_precision_key}", key="hardware.compute.mac_pJ",
                              allowed=", ".join(comp.mac_pJ))
    sram_layer_bytes = (fp.weight_bytes_per_layer + ds.weights + sb.ssm_read[:, None] + sb.ssm_write[:, None]
                        + (sb.conv_read + sb.conv_write)[:, None] + ds.activations)
    matmul_ns = batch * fp.matmul_flops_per_stream_layer / matmul_flops_per_ns
    vector_ns = batch * (fp.layer.scan_ops + fp.layer.conv_ops) / comp.vector_GFLOPS
    quant_ns = sb.quant_elements / comp.quantise_Gelem_per_s
    sram_ns = sram_layer_bytes / hw.sram.bandwidth_GBps
    layer_compute_ns = np.maximum.reduce([np.full((steps, layers), matmul_ns),
                                          np.full((steps, layers), vector_ns),
                                          np.broadcast_to(quant_ns[:, None], (steps, layers)), sram_ns])
    lm_compute_ns = np.maximum(batch * fp.lm_head_flops_per_stream / matmul_flops_per_ns,
                               (fp.lm_head_bytes + ds.lm_head) / hw.sram.bandwidth_GBps) * np.ones(steps)

    # replay passes: each pass re-streams the layers for the streams still re-executing
    passes = sb.passes
    streams_per_pass = np.divide(sb.replay_n.sum(axis=1), passes, out=np.zeros(steps), where=passes > 0)
    replay_read_pass = np.divide(sb.replay_read, passes, out=np.zeros(steps), where=passes > 0)
    replay_write_pass = np.divide(sb.replay_write, passes, out=np.zeros(steps), where=passes > 0)
    mean_w_dram = ds.weights.mean(axis=1)
    return {
        "layer_read_ns": layer_read_ns, "layer_write_ns": layer_write_ns, "layer_compute_ns": layer_compute_ns,
        "lm_read_ns": lm_read_ns, "lm_compute_ns": lm_compute_ns, "deferred_read_ns": deferred_read_ns,
        "deferred_write_ns": deferred_write_ns, "replay_passes": passes.astype(np.int64),
        "replay_layer_read_ns": service(mean_w_dram, tile) + service(replay_read_pass, sb.high_one),
        "replay_layer_write_ns": service(replay_write_pass, sb.high_one),
        "replay_layer_compute_ns": np.maximum(
            streams_per_pass * (fp.matmul_flops_per_stream_layer / matmul_flops_per_ns),
            streams_per_pass * (fp.layer.scan_ops + fp.layer.conv_ops) / comp.vector_GFLOPS),
        "layer_read_bytes": ds.weights + ds.ssm_read + ds.conv_read,
        "layer_write_bytes": (spill_layer if current else ssm_write_layer) + ds.conv_write,
        "lm_read_bytes": ds.lm_head + ds.embeddings * np.ones(steps),
        "deferred_read_bytes": ds.spill if current else np.zeros(steps),
        "deferred_write_bytes": ssm_write_layer.sum(axis=1) if current else np.zeros(steps),
        "replay_layer_read_bytes": np.where(passes > 0, mean_w_dram + replay_read_pass, 0.0),
        "replay_layer_write_bytes": replay_write_pass}


def energy_actions(exp: Experiment, fp: ModelFootprint, sb: StateBytes, ds: DramSide,
                   dram: DramTiming | None) -> dict[str, np.ndarray]:
    """Action counts per step for the energy table: MACs, vector ops, (de)quantised elements, activates."""
    batch, layers, steps = exp.workload.batch_size, fp.n_layers, len(sb.ssm_write)
    elements = fp.layer.ssm_state_elements
    replay_stream_steps = sb.replay_n.sum(axis=1)
    actions = {
        "matmul_macs": (batch * (layers * fp.matmul_flops_per_stream_layer + fp.lm_head_flops_per_stream)
                        + replay_stream_steps * layers * fp.matmul_flops_per_stream_layer) / 2 * np.ones(steps),
        "vector_ops": (batch + replay_stream_steps) * layers * (fp.layer.scan_ops + fp.layer.conv_ops)
                      * np.ones(steps),
        "quantise_elements": sb.quant_elements * layers + replay_stream_steps * elements * layers,
    }
    if dram is not None:
        tile = weight_run_bytes(exp, fp)
        mean_read_run = np.maximum(sb.ssm_read / batch, 1.0)
        mean_write_run = np.maximum(sb.ssm_write / batch, 1.0)
        act_read = (dram.activates(ds.weights.sum(axis=1) + ds.replay_weights + ds.lm_head, tile)
                    + dram.activates(ds.ssm_read.sum(axis=1) + sb.replay_read * layers, mean_read_run)
                    + dram.activates(ds.conv_read.sum(axis=1), np.maximum(sb.conv_read / batch, 1.0))
                    + dram.activates(ds.embeddings * np.ones(steps), fp.embedding_bytes_per_token))
        act_write = (dram.activates(ds.ssm_write.sum(axis=1) + (sb.checkpoint + sb.replay_write) * layers,
                                    mean_write_run)
                     + dram.activates(ds.conv_write.sum(axis=1), np.maximum(sb.conv_write / batch, 1.0))
                     + 2 * dram.activates(ds.spill, mean_write_run))
        actions["dram_activates"] = act_read + act_write
    return actions
