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


def build_traffic(exp: Experiment, fp: ModelFootprint, plan: StatePlan, dram: DramTiming | None,
                  budget_bytes: float) -> Traffic:
    hw, policy, batch, layers = exp.hardware, exp.policy, exp.workload.batch_size, fp.n_layers
    steps = plan.write_bits.shape[0]
    elements = fp.layer.ssm_state_elements

    def per_stream(bits: np.ndarray) -> np.ndarray:
        return state_bytes(elements, bits, policy.group_size, policy.scale_bits)

    high_one = float(per_stream(policy.high_bits))
    low_one = float(per_stream(policy.low_bits))
    ssm_read = per_stream(plan.read_bits).sum(axis=1)       # per layer, summed over the batch
    ssm_write = per_stream(plan.write_bits).sum(axis=1)
    checkpoint = per_stream(plan.checkpoint_bits).sum(axis=1)
    replay_n = plan.replay_steps
    replay_read = (replay_n * high_one).sum(axis=1)
    replay_write = np.where(replay_n > 0, (replay_n - 1) * high_one + low_one, 0.0).sum(axis=1)
    passes = replay_n.max(axis=1)

    conv = batch * fp.conv_state_bytes_per_stream_layer  # at activation precision: what placement reserves
    if policy.gate_conv_state:
        conv_elements = fp.layer.conv_state_elements
        conv_read = state_bytes(conv_elements, plan.read_bits, policy.group_size, policy.scale_bits).sum(axis=1)
        conv_write = state_bytes(conv_elements, plan.write_bits, policy.group_size, policy.scale_bits).sum(axis=1)
    else:
        conv_read = conv_write = np.full(steps, conv)
    placement = place(hw.sram, budget_bytes=budget_bytes, layers=layers, ssm_write_per_layer=ssm_write,
                      ssm_read_first=float(ssm_read[0]), ssm_max_per_layer=batch * high_one,
                      conv_per_layer=conv, weights_per_layer=fp.weight_bytes_per_layer,
                      lm_head_bytes=fp.lm_head_bytes)
    if hw.dram is None:
        everything_on_chip = (placement.ssm_write_sram.min(), placement.conv_sram.min(),
                              placement.weights_sram.min(), placement.lm_head_sram.min())
        if min(everything_on_chip) < 1.0:
            raise HwsimInputError("this SRAM-only hardware cannot hold the model's weights and states",
                                  key="hardware.dram", allowed="add a dram section or a larger sram")

    # bytes per (step, layer) by category and level
    w_dram = fp.weight_bytes_per_layer * (1 - placement.weights_sram)
    ssm_r_dram = ssm_read[:, None] * (1 - placement.ssm_read_sram)
    ssm_w_dram = ssm_write[:, None] * (1 - placement.ssm_write_sram)
    conv_r_dram = conv_read[:, None] * (1 - placement.conv_sram)
    conv_w_dram = conv_write[:, None] * (1 - placement.conv_sram)
    lm_dram = fp.lm_head_bytes * (1 - placement.lm_head_sram)
    embed = batch * fp.embedding_bytes_per_token
    act = batch * fp.activation_bytes_per_stream_layer

    current = policy.gate_on == "current"
    buffer_total = layers * batch * high_one if current else 0.0
    buffer_sram = min(buffer_total, placement.spare_bytes)
    spill = (buffer_total - buffer_sram) * np.ones(steps)

    by = {}

    def put(level, direction, category, per_step):
        by[(level, direction, category)] = np.asarray(per_step, dtype=np.float64) * np.ones(steps)

    # weights and states fetched from DRAM land in SRAM buffers and are read from there by compute
    put("dram", "read", "weights", w_dram.sum(axis=1))
    put("dram", "read", "lm_head", lm_dram)
    put("dram", "read", "embeddings", embed)
    put("dram", "read", "ssm_state", ssm_r_dram.sum(axis=1))
    put("dram", "write", "ssm_state", ssm_w_dram.sum(axis=1))
    put("dram", "read", "conv_state", conv_r_dram.sum(axis=1))
    put("dram", "write", "conv_state", conv_w_dram.sum(axis=1))
    put("dram", "write", "checkpoint", checkpoint * layers)
    replay_weights = passes * w_dram.sum(axis=1)
    put("dram", "read", "replay", replay_read * layers + replay_weights)
    put("dram", "write", "replay", replay_write * layers)
    put("dram", "write", "spill", spill)
    put("dram", "read", "spill", spill)
    put("sram", "write", "weights", w_dram.sum(axis=1) + replay_weights)
    put("sram", "read", "weights", layers * fp.weight_bytes_per_layer * (1 + passes))
    put("sram", "write", "lm_head", lm_dram)
    put("sram", "read", "lm_head", fp.lm_head_bytes)
    put("sram", "read", "ssm_state", ssm_read * layers)                 # every state passes through SRAM
    put("sram", "write", "ssm_state", ssm_write * layers)
    put("sram", "read", "conv_state", conv_read * layers)
    put("sram", "write", "conv_state", conv_write * layers)
    put("sram", "write", "spill", buffer_sram)
    put("sram", "read", "spill", buffer_sram)
    put("sram", "read", "activations", act * layers * (1 + passes) / 2)
    put("sram", "write", "activations", act * layers * (1 + passes) / 2)
    if dram is None:
        by = {k: v for k, v in by.items() if k[0] != "dram"}

    # timing inputs: DRAM service of each layer's prefetch and write-back, compute of each layer
    def service(nbytes, run_bytes):
        if dram is None:
            return np.zeros(np.shape(nbytes))
        core = dram.service_ns(nbytes, run_bytes)
        return np.maximum(core, np.asarray(nbytes) / hw.dma.bandwidth_GBps) if hw.dma else core

    mean_read_run = np.maximum(ssm_read / batch, 1.0)[:, None]
    mean_write_run = np.maximum(ssm_write / batch, 1.0)[:, None]
    tile = hw.dma.weight_tile_bytes if hw.dma else fp.weight_bytes_per_layer  # GPU: a GEMM reads its matrix
    conv_read_run = np.maximum(conv_read / batch, 1.0)
    conv_write_run = np.maximum(conv_write / batch, 1.0)
    layer_read_ns = (service(w_dram, tile) + service(ssm_r_dram, mean_read_run)
                     + service(conv_r_dram, conv_read_run[:, None]))
    ssm_write_layer = ssm_w_dram + checkpoint[:, None] * np.ones((1, layers))
    spill_layer = spill[:, None] / layers * np.ones((1, layers))
    conv_write_ns = service(conv_w_dram, conv_write_run[:, None])
    if current:
        layer_write_ns = service(spill_layer, mean_write_run) + conv_write_ns
        deferred_read_ns = service(spill, mean_write_run[:, 0])
        deferred_write_ns = service(ssm_write_layer.sum(axis=1), mean_write_run[:, 0])
    else:
        layer_write_ns = service(ssm_write_layer, mean_write_run) + conv_write_ns
        deferred_read_ns = deferred_write_ns = np.zeros(steps)
    layer_read_bytes = w_dram + ssm_r_dram + conv_r_dram
    layer_write_bytes = (spill_layer if current else ssm_write_layer) + conv_w_dram
    deferred_read_bytes = spill if current else np.zeros(steps)
    deferred_write_bytes = ssm_write_layer.sum(axis=1) if current else np.zeros(steps)
    lm_read_ns = service(lm_dram * np.ones(steps), tile) + service(embed * np.ones(steps),
                                                                   fp.embedding_bytes_per_token)

    comp = hw.compute
    matmul_flops_per_ns = flops_per_ns(comp.matmul_TFLOPS[fp.weight_precision_key])
    if fp.weight_precision_key not in comp.mac_pJ:
        raise HwsimInputError(f"no MAC energy for {fp.weight_precision_key}", key="hardware.compute.mac_pJ",
                              allowed=", ".join(comp.mac_pJ))
    low_reads = (plan.read_bits < policy.high_bits).sum(axis=1)
    low_writes = (plan.write_bits < policy.high_bits).sum(axis=1)
    quantised_per_state = elements + (fp.layer.conv_state_elements if policy.gate_conv_state else 0)
    quant_elements = (low_reads + low_writes + (plan.checkpoint_bits > 0).sum(axis=1)) * quantised_per_state
    sram_layer_bytes = (fp.weight_bytes_per_layer + w_dram + ssm_read[:, None] + ssm_write[:, None]
                        + (conv_read + conv_write)[:, None] + act)
    matmul_ns = batch * fp.matmul_flops_per_stream_layer / matmul_flops_per_ns
    vector_ns = batch * (fp.layer.scan_ops + fp.layer.conv_ops) / comp.vector_GFLOPS
    quant_ns = quant_elements / comp.quantise_Gelem_per_s
    sram_ns = sram_layer_bytes / hw.sram.bandwidth_GBps
    layer_compute_ns = np.maximum.reduce([np.full((steps, layers), matmul_ns),
                                          np.full((steps, layers), vector_ns),
                                          np.broadcast_to(quant_ns[:, None], (steps, layers)), sram_ns])
    lm_compute_ns = np.maximum(batch * fp.lm_head_flops_per_stream / matmul_flops_per_ns,
                               (fp.lm_head_bytes + lm_dram) / hw.sram.bandwidth_GBps) * np.ones(steps)

    # replay passes: each pass re-streams the layers for the streams still re-executing
    streams_per_pass = np.divide(replay_n.sum(axis=1), passes, out=np.zeros(steps), where=passes > 0)
    replay_read_pass = np.divide(replay_read, passes, out=np.zeros(steps), where=passes > 0)
    replay_write_pass = np.divide(replay_write, passes, out=np.zeros(steps), where=passes > 0)
    mean_w_dram = w_dram.mean(axis=1)
    replay_layer_read_ns = service(mean_w_dram, tile) + service(replay_read_pass, high_one)
    replay_layer_write_ns = service(replay_write_pass, high_one)
    replay_layer_compute_ns = np.maximum(
        streams_per_pass * (fp.matmul_flops_per_stream_layer / matmul_flops_per_ns),
        streams_per_pass * (fp.layer.scan_ops + fp.layer.conv_ops) / comp.vector_GFLOPS)

    replay_stream_steps = replay_n.sum(axis=1)
    actions = {
        "matmul_macs": (batch * (layers * fp.matmul_flops_per_stream_layer + fp.lm_head_flops_per_stream)
                        + replay_stream_steps * layers * fp.matmul_flops_per_stream_layer) / 2 * np.ones(steps),
        "vector_ops": (batch + replay_stream_steps) * layers * (fp.layer.scan_ops + fp.layer.conv_ops)
                      * np.ones(steps),
        "quantise_elements": quant_elements * layers + replay_stream_steps * elements * layers,
    }
    if dram is not None:
        act_read = (dram.activates(w_dram.sum(axis=1) + replay_weights + lm_dram, tile)
                    + dram.activates(ssm_r_dram.sum(axis=1) + replay_read * layers, mean_read_run[:, 0])
                    + dram.activates(conv_r_dram.sum(axis=1), conv_read_run)
                    + dram.activates(embed * np.ones(steps), fp.embedding_bytes_per_token))
        act_write = (dram.activates(ssm_w_dram.sum(axis=1) + (checkpoint + replay_write) * layers,
                                    mean_write_run[:, 0])
                     + dram.activates(conv_w_dram.sum(axis=1), conv_write_run)
                     + 2 * dram.activates(spill, mean_write_run[:, 0]))
        actions["dram_activates"] = act_read + act_write
    return Traffic(
        steps=steps, layers=layers, bytes=by, layer_read_ns=layer_read_ns, layer_write_ns=layer_write_ns,
        layer_compute_ns=layer_compute_ns, lm_read_ns=lm_read_ns, lm_compute_ns=lm_compute_ns,
        deferred_read_ns=deferred_read_ns, deferred_write_ns=deferred_write_ns,
        replay_passes=passes.astype(np.int64), replay_layer_read_ns=replay_layer_read_ns,
        replay_layer_write_ns=replay_layer_write_ns, replay_layer_compute_ns=replay_layer_compute_ns,
        layer_read_bytes=layer_read_bytes, layer_write_bytes=layer_write_bytes,
        lm_read_bytes=lm_dram + embed * np.ones(steps), deferred_read_bytes=deferred_read_bytes,
        deferred_write_bytes=deferred_write_bytes,
        replay_layer_read_bytes=np.where(passes > 0, mean_w_dram + replay_read_pass, 0.0),
        replay_layer_write_bytes=replay_write_pass,
        actions=actions, read_latency_ns=dram.read_latency_ns if dram else 0.0,
        write_to_read_ns=dram.write_to_read_ns if dram else 0.0,
        read_to_write_ns=dram.read_to_write_ns if dram else 0.0, low_writes=low_writes,
        ssm_sram_share=(placement.ssm_write_sram * ssm_write[:, None]).sum(axis=1)
        / np.maximum(ssm_write * layers, 1.0),
        placement=placement, ssm_read_per_layer=ssm_read, ssm_write_per_layer=ssm_write,
        conv_read_per_layer=np.asarray(conv_read, dtype=np.float64) * np.ones(steps),
        conv_write_per_layer=np.asarray(conv_write, dtype=np.float64) * np.ones(steps),
        quantised_elements_per_layer=quant_elements.astype(np.float64))
