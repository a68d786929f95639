"""The kernels a GPU launches for one decode step or one prefill, and what each reads, writes, computes.

Follows the reference decode paths: mamba_ssm's `Mamba.step` / `Mamba2.step` inside `Block` (fused
residual add + RMSNorm, residual kept in fp32) and `MambaLMHeadModel` (final norm, LM head, then the
sampler outside the captured graph); Hugging Face transformers' `MambaForCausalLM` /
`Mamba2ForCausalLM` with the CUDA kernels, whose norms, splits and cache updates are separate PyTorch
operations. Prefill is the parallel form: GEMMs over every prompt token, `causal_conv1d_fn`, the
selective scan (Mamba-1) or the chunked SSD scan (Mamba-2), the final states written once.

Counts here are per token (one stream in decode, one prompt position in prefill) and per launch
(weights, per-launch constants); bytes follow from the model's precisions. The SSM and conv state
bytes of a decode step come from the policy plan, so `Kernel` only marks which kernel moves them.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.config.model import ModelSpec
from hwsim.geometry import SCAN_OPS_PER_STATE_ELEMENT, ModelFootprint
from hwsim.sizing import quantised_bytes

#: fp32 operations per element: an RMSNorm (square, sum, scale, weight), a gated RMSNorm (+ SiLU gate),
#: a residual add, a SiLU. Op counts of the algorithm, not hardware figures.
RMSNORM_OPS, GATED_RMSNORM_OPS, ADD_OPS, SILU_OPS = 4, 8, 1, 4
#: dequantise one low-bit element (unpack, convert, scale) and quantise one (scale, round, pack, share
#: of the group max): op counts of the usual integer group-scale kernels.
DEQUANT_OPS_PER_ELEMENT, QUANT_OPS_PER_ELEMENT = 3, 5
#: Mamba-2 SSD chunk length in mamba_ssm's `mamba_chunk_scan_combined` (chunk_size=256 in the configs)
SSD_CHUNK_TOKENS = 256


@dataclass(frozen=True)
class Kernel:
    """One launch. Per-token figures scale with the tokens the launch covers; the rest are per launch."""

    name: str
    kind: str                         # gemm | conv | scan | norm | elementwise | gather | sample
    weight_bytes: float = 0.0         # read once per launch at storage precision
    weight_elements: float = 0.0      # low-bit projection weights dequantised (once per GEMM row tile)
    act_in_bytes: float = 0.0         # per token
    act_out_bytes: float = 0.0        # per token
    const_bytes: float = 0.0          # per launch, read and written (e.g. A = -exp(A_log) in fp32)
    gather_bytes: float = 0.0         # per token, read from DRAM (embedding rows)
    matmul_flops: float = 0.0         # per token, tensor cores
    vector_ops: float = 0.0           # per token, fp32 element-wise
    ssm_state: bool = False           # moves the layer's SSM state (bytes from the plan)
    conv_state: bool = False          # moves the layer's conv state
    host_only: bool = False           # launched by the host outside a captured graph (the sampler)
    sync_before: bool = False         # the host waits for the device before issuing it (reads a flag)
    triton: bool = False              # a Triton JIT kernel: launched from Python through Triton's binder


@dataclass(frozen=True)
class KernelPlan:
    """The kernels of one layer (repeated n_layers times) and of the step's head and tail."""

    layer: tuple[Kernel, ...]
    head: tuple[Kernel, ...]          # before the first layer (embedding)
    tail: tuple[Kernel, ...]          # after the last layer (final norm, LM head, sampler)
    n_layers: int
    sync_per_step: bool = False       # the generation loop reads a device value every step

    @property
    def launches_per_step(self) -> int:
        return self.n_layers * len(self.layer) + len(self.head) + len(self.tail)


def _projection_bytes(model: ModelSpec, params: float) -> float:
    return float(quantised_bytes(params, model.weight_bits, model.weight_group_size, model.weight_scale_bits))


def _lowbit(model: ModelSpec, params: float) -> float:
    return float(params) if model.weight_bits < 16 else 0.0


def _gemm(model: ModelSpec, name: str, d_in: int, d_out: int, act: float) -> Kernel:
    params = d_in * d_out
    return Kernel(name, "gemm", weight_bytes=_projection_bytes(model, params),
                  weight_elements=_lowbit(model, params), act_in_bytes=d_in * act, act_out_bytes=d_out * act,
                  matmul_flops=2.0 * params)


def _ew(name: str, elements: float, in_bytes: float, out_bytes: float, *, per_token: bool = True,
        ops: float = 1.0, weight_bytes: float = 0.0, host_only: bool = False, sync: bool = False) -> Kernel:
    """A PyTorch element-wise / reduction / copy kernel over `elements` values (per token unless
    `per_token` is False), reading `in_bytes` and writing `out_bytes` per value."""
    if per_token:
        return Kernel(name, "elementwise", weight_bytes=weight_bytes, act_in_bytes=elements * in_bytes,
                      act_out_bytes=elements * out_bytes, vector_ops=ops * elements, host_only=host_only,
                      sync_before=sync)
    return Kernel(name, "elementwise", weight_bytes=weight_bytes, const_bytes=elements * (in_bytes + out_bytes),
                  host_only=host_only, sync_before=sync)


def decode_kernels(model: ModelSpec, fp: ModelFootprint, framework: str) -> KernelPlan:
    """Kernels of one decode step in launch order. Their weight bytes add up to the footprint's
    (tests check it): both execution kinds share one byte accounting."""
    act = model.activation_bits / 8.0
    d_model, d_inner, d_state, d_conv = model.d_model, model.d_inner, model.d_state, model.d_conv
    hf = framework == "transformers"
    if model.architecture == "mamba2":
        heads, groups = model.n_heads, model.ngroups
        conv_channels = d_inner + 2 * groups * d_state
        in_out = 2 * d_inner + 2 * groups * d_state + heads
        mixer = [
            _gemm(model, "in_proj", d_model, in_out, act),
            Kernel("causal_conv1d_update", "conv", weight_bytes=2.0 * conv_channels * (d_conv + 1),
                   act_in_bytes=conv_channels * act, act_out_bytes=conv_channels * act,
                   vector_ops=(2 * d_conv + SILU_OPS) * conv_channels, conv_state=True),
            # A = -exp(A_log.float()): cast, exp, negate over one value per head
            *[_ew(f"A.{op}", heads, act if op == "cast" else 4, 4, per_token=False) for op in ("cast", "exp", "neg")],
            Kernel("selective_state_update", "scan", triton=True, weight_bytes=2.0 * 3 * heads,  # A_log, D, dt_bias
                   act_in_bytes=(d_inner + heads + 2 * groups * d_state) * act,     # x, dt, B, C
                   act_out_bytes=d_inner * act,
                   vector_ops=SCAN_OPS_PER_STATE_ELEMENT["mamba2"] * d_inner * d_state, ssm_state=True),
            *(_hf_gated_norm(d_inner, act) if hf else
              [Kernel("rmsnorm_gated", "norm", triton=True, weight_bytes=2.0 * d_inner, act_in_bytes=2 * d_inner * act,
                      act_out_bytes=d_inner * act, vector_ops=GATED_RMSNORM_OPS * d_inner)]),
            _gemm(model, "out_proj", d_inner, d_model, act),
        ]
    else:
        rank = model.resolved_dt_rank
        mixer = [
            _gemm(model, "in_proj", d_model, 2 * d_inner, act),
            *([_ew("cache_position_check", 1, 8, 1, per_token=False, sync=True)] if hf else []),
            Kernel("causal_conv1d_update", "conv", weight_bytes=2.0 * d_inner * (d_conv + 1),
                   act_in_bytes=d_inner * act, act_out_bytes=d_inner * act,
                   vector_ops=(2 * d_conv + SILU_OPS) * d_inner, conv_state=True),
            _gemm(model, "x_proj", d_inner, rank + 2 * d_state, act),
            _gemm(model, "dt_proj", rank, d_inner, act),
            # A = -exp(A_log.float()) every step over (d_inner, d_state); transformers loads A_log in
            # the model dtype, so its .float() is a real cast
            *([_ew("A.cast", d_inner * d_state, act, 4, per_token=False)] if hf else []),
            _ew("A.exp", d_inner * d_state, 4, 4, per_token=False, weight_bytes=4.0 * d_inner * d_state),
            _ew("A.neg", d_inner * d_state, 4, 4, per_token=False),
            *([_ew("dt_bias.float", d_inner, act, 4, per_token=False),
               _ew("cache_position_check", 1, 8, 1, per_token=False, sync=True)] if hf else []),
            Kernel("selective_state_update", "scan", triton=True, weight_bytes=2.0 * 2 * d_inner,  # D, dt_bias
                   const_bytes=4.0 * d_inner * d_state,                                # A, read back
                   act_in_bytes=(3 * d_inner + 2 * d_state) * act, act_out_bytes=d_inner * act,
                   vector_ops=SCAN_OPS_PER_STATE_ELEMENT["mamba1"] * d_inner * d_state, ssm_state=True),
            _gemm(model, "out_proj", d_inner, d_model, act),
        ]
    residual = 4.0  # the residual stream is fp32 (residual_in_fp32)
    if hf:   # MambaRMSNorm and the residual add as PyTorch operations (transformers' Block)
        layer = [*_hf_block_norm(d_model, act), *mixer, _ew("residual_add", d_model, residual + act, residual)]
    else:    # one fused Triton add + RMSNorm (mamba_ssm's Block, layer_norm_fn with prenorm)
        layer = [Kernel("add_rmsnorm", "norm", triton=True, weight_bytes=2.0 * d_model,
                        act_in_bytes=d_model * (act + residual), act_out_bytes=d_model * (act + residual),
                        vector_ops=(RMSNORM_OPS + ADD_OPS) * d_model), *mixer]
    layer = _balance_weights(layer, fp)
    vocab = model.vocab_size
    lm = _gemm(model, "lm_head", d_model, vocab, act)
    lm = Kernel("lm_head", "gemm", weight_bytes=fp.lm_head_bytes, weight_elements=lm.weight_elements,
                act_in_bytes=lm.act_in_bytes, act_out_bytes=lm.act_out_bytes, matmul_flops=lm.matmul_flops)
    embedding = Kernel("embedding", "gather", gather_bytes=d_model * act, act_out_bytes=d_model * act)
    if hf:   # generate(): norm_f, cast, LM head, .float(), logits copy, argmax, ~20 bookkeeping kernels
        head = (_ew("generate.sync", 1, 8, 1, per_token=False, sync=True), embedding)
        # norm_f on the fp32 stream (its casts are no-ops); its d_model weights are left out of the
        # footprint's weight bytes on both paths (1/vocab of the LM head's)
        norm_f = [Kernel(**{**k.__dict__, "weight_bytes": 0.0}) for k in _hf_block_norm(d_model, act)
                  if k.name not in ("norm.cast", "norm.to_fp32", "norm.to_act")]
        tail = (*norm_f, _ew("cast", d_model, residual, act), lm,
                _ew("logits.float", vocab, act, 4), _ew("logits.copy", vocab, 4, 4),
                Kernel("argmax", "sample", act_in_bytes=vocab * 4, act_out_bytes=8.0, vector_ops=float(vocab)),
                *[_ew(f"generate.bookkeeping.{i}", 1, 8, 8) for i in range(GENERATE_BOOKKEEPING_KERNELS)])
        return KernelPlan(layer=tuple(layer), head=head, tail=tail, n_layers=model.n_layers, sync_per_step=True)
    # mamba_ssm generate(cg): the host fills position ids and copies the token into the graph's input,
    # replays the graph (embedding .. LM head), clones the logits and takes the argmax (greedy)
    norm_f = Kernel("norm_f", "norm", triton=True, weight_bytes=0.0, act_in_bytes=d_model * (act + residual),
                    act_out_bytes=d_model * (act + residual), vector_ops=(RMSNORM_OPS + ADD_OPS) * d_model)
    head = tuple(_ew(name, 1, 8, 8, host_only=True) for name in ("position_ids.fill", "lengths.fill",
                                                                 "input_ids.copy", "position_ids.copy"))
    tail = (norm_f, lm, _ew("logits.clone", vocab, act, act, host_only=True),
            Kernel("argmax", "sample", act_in_bytes=vocab * act, act_out_bytes=8.0, vector_ops=float(vocab),
                   host_only=True))
    return KernelPlan(layer=tuple(layer), head=(*head, embedding), tail=tail, n_layers=model.n_layers)


#: transformers' generate() launches about 20 small kernels per step outside the model (cache_position
#: update, attention-mask growth, input_ids concatenation, stopping criteria): research notes of the
#: `_sample` loop (generation/utils.py), counted for greedy decoding.
GENERATE_BOOKKEEPING_KERNELS = 20


def _hf_block_norm(d_model: int, act: float) -> list[Kernel]:
    """transformers' MambaRMSNorm on the block input (fp32 residual stream): cast, to fp32, pow, mean,
    +eps, rsqrt, multiply, to the activation dtype, times the weight."""
    return [_ew("norm.cast", d_model, 4, act), _ew("norm.to_fp32", d_model, act, 4),
            _ew("norm.pow", d_model, 4, 4), _ew("norm.mean", d_model, 4, 0), _ew("norm.eps", 1, 4, 4),
            _ew("norm.rsqrt", 1, 4, 4), _ew("norm.mul", d_model, 4, 4), _ew("norm.to_act", d_model, 4, act),
            _ew("norm.weight", d_model, act, act, weight_bytes=2.0 * d_model)]


def _hf_gated_norm(d_inner: int, act: float) -> list[Kernel]:
    """transformers' MambaRMSNormGated: 11 element-wise operations over d_inner values."""
    spec = [("to_fp32", act, 4), ("gate.to_fp32", act, 4), ("silu", 4, 4), ("mul", 8, 4), ("pow", 4, 4),
            ("mean", 4, 0), ("mul_rstd", 4, 4), ("to_act", 4, act), ("weight", act, act)]
    kernels = [_ew(f"gated_norm.{name}", d_inner, i, o, weight_bytes=2.0 * d_inner if name == "weight" else 0.0)
               for name, i, o in spec]
    return kernels[:6] + [_ew("gated_norm.eps", 1, 4, 4), _ew("gated_norm.rsqrt", 1, 4, 4)] + kernels[6:]


def _balance_weights(layer: list[Kernel], fp: ModelFootprint) -> list[Kernel]:
    """Put any weight bytes the kernels did not name (norm weights, biases) on the first kernel, so a
    step reads exactly the footprint's weights: both execution kinds share one byte accounting."""
    named = sum(k.weight_bytes for k in layer)
    rest = fp.weight_bytes_per_layer - named
    first = layer[0]
    return [Kernel(**{**first.__dict__, "weight_bytes": first.weight_bytes + rest}), *layer[1:]]


def prefill_kernels(model: ModelSpec, fp: ModelFootprint) -> KernelPlan:
    """Kernels of mamba_ssm's forward over the prompt with `inference_params` (the unfused branch that
    writes the final states; 15 per Mamba-1 layer, 16 per Mamba-2 layer). Per-token figures apply to
    every prompt token; `tail` is norm_f (over every position) and the LM head (last position only)."""
    act = model.activation_bits / 8.0
    d_inner, d_state, d_conv = model.d_inner, model.d_state, model.d_conv
    decode = decode_kernels(model, fp, "mamba_ssm")
    by_name = {k.name: k for k in decode.layer}
    conv_weights = by_name["causal_conv1d_update"].weight_bytes
    tiny = [_ew("conv_state.pad", 1, act, act, per_token=False),
            Kernel("conv_state.copy", "elementwise", conv_state=True)]   # the last d_conv columns, once
    layer = [by_name["add_rmsnorm"], by_name["in_proj"]]
    if model.architecture == "mamba2":
        heads, groups, headdim = model.n_heads, model.ngroups, model.headdim
        conv_channels = d_inner + 2 * groups * d_state
        q = SSD_CHUNK_TOKENS
        states_fp32 = 4.0 * heads * headdim * d_state / q        # per token: one fp32 state per chunk
        layer += [
            *[k for k in decode.layer if k.name.startswith("A.")], *tiny,
            Kernel("causal_conv1d_fn", "conv", weight_bytes=conv_weights, act_in_bytes=conv_channels * act,
                   act_out_bytes=conv_channels * act, vector_ops=(2 * d_conv + SILU_OPS) * conv_channels),
            # the five SSD kernels of mamba_chunk_scan_combined (chunk length q)
            Kernel("ssd.chunk_cumsum", "scan", triton=True, act_in_bytes=heads * act, act_out_bytes=2 * 4.0 * heads,
                   vector_ops=10.0 * heads),
            Kernel("ssd.chunk_state", "scan", triton=True, act_in_bytes=(d_inner + groups * d_state) * act + 8.0 * heads,
                   act_out_bytes=states_fp32, matmul_flops=2.0 * heads * headdim * d_state),
            Kernel("ssd.state_passing", "scan", triton=True, act_in_bytes=states_fp32, act_out_bytes=states_fp32 / 2,
                   vector_ops=2.0 * heads * headdim * d_state / q),
            Kernel("ssd.bmm_chunk", "scan", triton=True, act_in_bytes=2 * groups * d_state * act,
                   act_out_bytes=4.0 * groups * q, matmul_flops=2.0 * q * d_state * groups),
            Kernel("ssd.chunk_scan", "scan", triton=True,
                   weight_bytes=by_name["selective_state_update"].weight_bytes,
                   act_in_bytes=4.0 * groups * q + (d_inner + groups * d_state) * act + 8.0 * heads + states_fp32 / 2,
                   act_out_bytes=d_inner * act, matmul_flops=heads * (2.0 * headdim * d_state + headdim * q),
                   vector_ops=heads * q / 2.0),
            Kernel("ssm_state.copy", "elementwise", ssm_state=True),      # the fp32 final state, cast once
            by_name["rmsnorm_gated"], by_name["out_proj"],
        ]
    else:
        layer += [
            *[k for k in decode.layer if k.name.startswith("A.")], *tiny,
            Kernel("causal_conv1d_fn", "conv", weight_bytes=conv_weights, act_in_bytes=d_inner * act,
                   act_out_bytes=d_inner * act, vector_ops=(2 * d_conv + SILU_OPS) * d_inner),
            by_name["x_proj"], by_name["dt_proj"],
            _ew("B.contiguous", d_state, act, act), _ew("C.contiguous", d_state, act, act),
            _ew("dt_bias.float", d_inner, act, 4, per_token=False),
            # selective_scan_fwd reads u, delta, z, B, C and writes out and out_z
            Kernel("selective_scan", "scan", weight_bytes=by_name["selective_state_update"].weight_bytes,
                   act_in_bytes=(3 * d_inner + 2 * d_state) * act, act_out_bytes=2 * d_inner * act,
                   vector_ops=SCAN_OPS_PER_STATE_ELEMENT["mamba1"] * d_inner * d_state),
            Kernel("ssm_state.copy", "elementwise", ssm_state=True),
            by_name["out_proj"],
        ]
    layer = _balance_weights(layer, fp)
    norm_f, lm = decode.tail[0], decode.tail[1]
    return KernelPlan(layer=tuple(layer), head=(decode.head[-1],), tail=(norm_f, lm), n_layers=model.n_layers)
