"""Time a sequence of GPU kernels: each takes the larger of its memory and compute time at achieved
efficiency plus a first-access latency; dependent kernels do not overlap; the host issues them.

A kernel's DRAM time is the shared DRAM model's service time (`DramTiming`: bus, activates, refresh)
or the GPU's achieved streaming bandwidth, whichever is slower; its L2 time is every byte it touches
over the L2 bandwidth; compute is FLOPs over achieved tensor-core or fp32 throughput. Low-bit weights
are dequantised inside the GEMM once per row tile, low-bit states inside the scan kernel (and
quantised on write): that work is charged to the fp32 units.

The host and the device form a two-stage pipeline: kernel i starts at max(issued_i, end_{i-1} + gap).
Eagerly every kernel costs the host `host_launch_ns` (a PyTorch operation) or `triton_launch_ns` (a
Triton JIT kernel launched from Python); under CUDA graphs the captured step is one
`graph_launch_ns` and only the sampler is launched kernel by kernel. A step ends with a host sync (the
stop check reads the sampled tokens), so steps do not overlap. With P_i the cumulative device time
(gap + body) and H_i the issue times, the last kernel ends at P_n - gap + max_i(H_i - P_{i-1}): one
vectorised expression over steps and kernels, no per-kernel Python loop.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from hwsim.config.execution import Gpu
from hwsim.config.hardware import Hardware
from hwsim.engine import Timeline
from hwsim.kernels import DEQUANT_OPS_PER_ELEMENT, QUANT_OPS_PER_ELEMENT, Kernel, KernelPlan
from hwsim.memory.transaction import DramTiming
from hwsim.units import flops_per_ns


@dataclass(frozen=True)
class StepState:
    """What the policy plan and placement say each layer's state kernels move, per step (rows)."""

    ssm_read_bytes: np.ndarray        # (steps,) batch total per layer
    ssm_write_bytes: np.ndarray
    ssm_read_dram_share: np.ndarray   # (steps, layers)
    ssm_write_dram_share: np.ndarray
    conv_read_bytes: np.ndarray       # (steps,)
    conv_write_bytes: np.ndarray
    conv_dram_share: np.ndarray       # (steps, layers)
    weights_dram_share: np.ndarray    # (steps, layers)
    lm_head_dram_share: np.ndarray    # (steps,)
    low_state_elements: np.ndarray    # (steps,) state elements read or written at low precision, per layer


@dataclass(frozen=True)
class KernelTimes:
    body_ns: np.ndarray               # (steps, kernels) device time of each launch, latency included
    step_ns: np.ndarray               # (steps,) issue of the first kernel to the end of the last
    dram_read_bytes: np.ndarray       # (steps,) by every kernel of the step
    dram_write_bytes: np.ndarray
    activation_dram_read_bytes: np.ndarray   # (steps,) activations that did not fit in L2
    activation_dram_write_bytes: np.ndarray
    l2_bytes: dict[tuple[str, str], np.ndarray]   # (direction, category) -> (steps,): bytes kernels touch
    names: tuple[str, ...]


def sequence(plan: KernelPlan) -> tuple[list[Kernel], np.ndarray]:
    """The step's kernels in launch order and the layer each belongs to (-1: head or tail)."""
    kernels = list(plan.head) + list(plan.layer) * plan.n_layers + list(plan.tail)
    layer = np.concatenate([np.full(len(plan.head), -1), np.repeat(np.arange(plan.n_layers), len(plan.layer)),
                            np.full(len(plan.tail), -1)])
    return kernels, layer


def time_kernels(plan: KernelPlan, hw: Hardware, dram: DramTiming | None, *, tokens: int,
                 state: StepState, cuda_graphs: bool | None = None) -> KernelTimes:
    """Device time of every launch of every step, and each step's time through the host pipeline."""
    gpu: Gpu = hw.execution
    graphs = gpu.cuda_graphs if cuda_graphs is None else cuda_graphs
    kernels, layer_of = sequence(plan)
    steps, n = len(state.ssm_read_bytes), len(kernels)
    in_layer = layer_of >= 0
    lay = np.where(in_layer, layer_of, 0)

    def per_kernel(attr: str) -> np.ndarray:
        return np.array([float(getattr(k, attr)) for k in kernels])

    weight = per_kernel("weight_bytes")
    act_in, act_out = tokens * per_kernel("act_in_bytes"), tokens * per_kernel("act_out_bytes")
    const = per_kernel("const_bytes")
    gather = tokens * per_kernel("gather_bytes")
    is_lm = np.array([k.name == "lm_head" for k in kernels])
    ssm = np.array([k.ssm_state for k in kernels])
    conv = np.array([k.conv_state for k in kernels])

    weight_share = np.where(in_layer[None, :], state.weights_dram_share[:, lay],
                            np.where(is_lm[None, :], state.lm_head_dram_share[:, None], 1.0))
    weight_dram = weight[None, :] * weight_share                        # (steps, n)
    # activations stay in L2 when the tensor fits, else they make a round trip through DRAM
    l2_room = hw.sram.capacity_bytes - hw.sram.reserved_bytes
    act_spills = np.maximum(act_in, act_out) > l2_room
    act_dram_read = np.where(act_spills, act_in, 0.0)
    act_dram_write = np.where(act_spills, act_out, 0.0)
    ssm_r = np.where(ssm[None, :], state.ssm_read_bytes[:, None] * state.ssm_read_dram_share[:, lay], 0.0)
    ssm_w = np.where(ssm[None, :], state.ssm_write_bytes[:, None] * state.ssm_write_dram_share[:, lay], 0.0)
    conv_r = np.where(conv[None, :], state.conv_read_bytes[:, None] * state.conv_dram_share[:, lay], 0.0)
    conv_w = np.where(conv[None, :], state.conv_write_bytes[:, None] * state.conv_dram_share[:, lay], 0.0)
    dram_read = weight_dram + (act_dram_read + gather)[None, :] + ssm_r + conv_r
    dram_write = act_dram_write[None, :] + ssm_w + conv_w
    touched = (weight[None, :] + (act_in + act_out + const + gather)[None, :]
               + np.where(ssm[None, :], (state.ssm_read_bytes + state.ssm_write_bytes)[:, None], 0.0)
               + np.where(conv[None, :], (state.conv_read_bytes + state.conv_write_bytes)[:, None], 0.0))

    dram_ns = np.zeros((steps, n))
    if dram is not None:
        batch_runs = max(tokens, 1)
        shaped = np.broadcast_to
        bus = (dram.service_ns(weight_dram, np.maximum(shaped(weight, (steps, n)), 1.0))
               + dram.service_ns(ssm_r + ssm_w, np.maximum((ssm_r + ssm_w) / batch_runs, 1.0))
               + dram.service_ns(conv_r + conv_w, np.maximum((conv_r + conv_w) / batch_runs, 1.0))
               + dram.service_ns(shaped(act_dram_read + act_dram_write, (steps, n)),
                                 np.maximum(shaped(act_dram_read + act_dram_write, (steps, n)), 1.0))
               + dram.service_ns(shaped(gather, (steps, n)), np.maximum(gather / batch_runs, 1.0), "random"))
        achieved_bytes_per_ns = dram.peak_bytes_per_ns * gpu.dram_efficiency
        dram_ns = np.maximum(bus, (dram_read + dram_write) / achieved_bytes_per_ns)
    l2_ns = touched / hw.sram.bandwidth_GBps

    matmul_per_ns = flops_per_ns(hw.compute.matmul_TFLOPS["fp16"]) * gpu.matmul_efficiency  # fp16 activations
    vector_per_ns = hw.compute.vector_GFLOPS * gpu.vector_efficiency
    row_tiles = np.ceil(tokens / gpu.gemm_m_tile)
    dequant = per_kernel("weight_elements") * row_tiles * DEQUANT_OPS_PER_ELEMENT
    state_quant = np.where(ssm[None, :], state.low_state_elements[:, None], 0.0) * (
        DEQUANT_OPS_PER_ELEMENT + QUANT_OPS_PER_ELEMENT) / 2.0
    vector = tokens * per_kernel("vector_ops")[None, :] + dequant[None, :] + state_quant
    matmul_ns = tokens * per_kernel("matmul_flops") / matmul_per_ns
    vector_ns = vector / vector_per_ns
    latency = np.where(dram_read + dram_write > 0, gpu.dram_latency_ns, gpu.l2_latency_ns)
    body = latency + np.maximum.reduce([dram_ns, np.broadcast_to(l2_ns, (steps, n)),
                                        np.broadcast_to(matmul_ns, (steps, n)), vector_ns])

    host_only = np.array([k.host_only for k in kernels])
    eager = np.where([k.triton for k in kernels], gpu.triton_launch_ns, gpu.host_launch_ns)
    if graphs:   # the captured kernels leave with one graph launch; the host-side ones are eager
        captured = np.flatnonzero(~host_only)
        host = np.where(host_only, eager, 0.0)
        if captured.size:
            host[captured[0]] = gpu.graph_launch_ns
    else:
        host = eager.astype(np.float64)
    host[0] += gpu.step_host_ns
    sync = np.array([k.sync_before for k in kernels])
    if plan.sync_per_step:
        step_ns = pipeline(body, host, sync, gpu.kernel_gap_ns)[:, -1]
    else:   # the host runs ahead across steps: one pipeline over the whole chunk
        ends = pipeline(body.reshape(1, -1), np.tile(host, steps), np.tile(sync, steps), gpu.kernel_gap_ns)
        step_end = ends[0, n - 1::n]
        step_ns = np.diff(step_end, prepend=0.0)
    return KernelTimes(body_ns=body, step_ns=step_ns, dram_read_bytes=dram_read.sum(axis=1),
                       dram_write_bytes=dram_write.sum(axis=1),
                       activation_dram_read_bytes=np.full(steps, float(act_dram_read.sum())),
                       activation_dram_write_bytes=np.full(steps, float(act_dram_write.sum())),
                       l2_bytes=_l2_bytes(weight, is_lm, act_in + gather, act_out, const, state, plan.n_layers, steps),
                       names=tuple(k.name for k in kernels))


def _l2_bytes(weight, is_lm, act_in, act_out, const, state: StepState, layers: int, steps: int) -> dict:
    """Bytes the kernels move through L2 by category: every DRAM byte passes it, and so does every
    activation (the ones that fit stay there)."""
    ones = np.ones(steps)
    return {("read", "weights"): float(weight[~is_lm].sum()) * ones,
            ("read", "lm_head"): float(weight[is_lm].sum()) * ones,
            ("read", "ssm_state"): state.ssm_read_bytes * layers,
            ("write", "ssm_state"): state.ssm_write_bytes * layers,
            ("read", "conv_state"): state.conv_read_bytes * layers,
            ("write", "conv_state"): state.conv_write_bytes * layers,
            ("read", "activations"): float(act_in.sum() + const.sum() / 2) * ones,
            ("write", "activations"): float(act_out.sum() + const.sum() / 2) * ones}


def pipeline(body: np.ndarray, host: np.ndarray, sync: np.ndarray, gap_ns: float) -> np.ndarray:
    """End time of every kernel (rows: independent sequences that start idle at 0; columns: launches).

    Kernel i starts at max(issued_i, end_{i-1} + gap) and runs body_i; the host issues it host_i after
    the previous one, or, where `sync` marks it, after the device has finished everything before it.
    Between syncs the recurrence has the closed form end_j = P_j + max(D0, max_{i<=j}(H_i - P_{i-1} -
    gap)), with P the running sum of gap + body and D0 the device's free time at the segment start."""
    rows, n = body.shape
    out = np.empty_like(body)
    device = np.full(rows, -gap_ns)     # the first kernel pays no gap after an idle device
    issued = np.zeros(rows)
    cuts = [0, *np.flatnonzero(sync[1:]) + 1, n] if n else [0]
    for a, b in itertools.pairwise(cuts):
        if sync[a]:
            issued = np.maximum(issued, device)
        h = issued[:, None] + np.cumsum(host[a:b])[None, :]
        p = np.cumsum(gap_ns + body[:, a:b], axis=1)
        before = np.concatenate([np.zeros((rows, 1)), p[:, :-1]], axis=1)
        lead = np.maximum.accumulate(h - before - gap_ns, axis=1)
        out[:, a:b] = p + np.maximum(device[:, None], lead)
        device, issued = out[:, b - 1], h[:, -1]
    return out


def kernel_breakdown(times: KernelTimes) -> list[dict]:
    """Mean device time per step by kernel name: where a step's time goes."""
    mean = times.body_ns.mean(axis=0)
    out: dict[str, dict] = {}
    for name, t in zip(times.names, mean):
        row = out.setdefault(name, {"kernel": name, "launches_per_step": 0, "time_ns_per_step": 0.0})
        row["launches_per_step"] += 1
        row["time_ns_per_step"] += float(t)
    return sorted(out.values(), key=lambda r: -r["time_ns_per_step"])


class GpuEngine:
    """Decode on a GPU, chunk by chunk; keeps the clock between chunks like `DecodeEngine`."""

    def __init__(self, hw: Hardware, plan: KernelPlan, dram: DramTiming | None, batch: int):
        self.hw, self.plan, self.dram, self.batch = hw, plan, dram, batch
        self.clock_ns = 0.0
        self.last: KernelTimes | None = None

    def run(self, traffic) -> Timeline:
        """Time one chunk of `Traffic`; afterwards `self.last` holds its kernel times."""
        placement = traffic.placement
        state = StepState(
            ssm_read_bytes=traffic.ssm_read_per_layer, ssm_write_bytes=traffic.ssm_write_per_layer,
            ssm_read_dram_share=1.0 - placement.ssm_read_sram, ssm_write_dram_share=1.0 - placement.ssm_write_sram,
            conv_read_bytes=traffic.conv_read_per_layer, conv_write_bytes=traffic.conv_write_per_layer,
            conv_dram_share=1.0 - placement.conv_sram, weights_dram_share=1.0 - placement.weights_sram,
            lm_head_dram_share=1.0 - placement.lm_head_sram,
            low_state_elements=traffic.quantised_elements_per_layer)
        times = time_kernels(self.plan, self.hw, self.dram, tokens=self.batch, state=state)
        self.last = times
        ends = self.clock_ns + np.cumsum(times.step_ns)
        starts = ends - times.step_ns
        self.clock_ns = float(ends[-1])
        busy = float(times.body_ns.sum())
        return Timeline(step_start_ns=starts, step_end_ns=ends, end_ns=self.clock_ns,
                        dram_served_bytes={"read": float(times.dram_read_bytes.sum()),
                                           "write": float(times.dram_write_bytes.sum())},
                        dram_busy_ns=busy)
