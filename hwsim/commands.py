"""`hwsim run`, `hwsim validate`, `hwsim schema`: the core simulator's commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwsim.cache import add_cache_argument
from hwsim.config.loading import DEFAULT_EXPERIMENT, load_experiment
from hwsim.files import check_output_dir
from hwsim.paths import REPORTS_DIR, output_path
from hwsim.units import BYTES_PER_MB, NS_PER_MS, NS_PER_US, PJ_PER_MJ

SHORT_TABLE = [
    ("tokens/s", "tokens_per_s", "baseline_tokens_per_s", "{:,.0f}"),
    ("step latency mean (us)", "step_latency_ns_mean", "baseline_step_latency_ns_mean", "{:,.1f}", 1 / NS_PER_US),
    ("DRAM bytes per token (MB)", "dram_bytes_per_token", "baseline_dram_bytes_per_token", "{:,.2f}",
     1 / BYTES_PER_MB),
    ("DRAM bandwidth avg (GB/s)", "dram_bandwidth_GBps_avg", "baseline_dram_bandwidth_GBps_avg", "{:,.0f}"),
    ("energy per token (mJ)", "energy_pJ_per_token_total", "baseline_energy_pJ_per_token_total", "{:,.3f}",
     1 / PJ_PER_MJ),
]


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="simulate one experiment (default: configs/experiments/default.yaml)",
        epilog="examples: hwsim run; hwsim run default --set policy.threshold_bits=2; "
               "hwsim run my.yaml --set hardware=rtx-4090 --set workload.prompt_tokens=2048 --json")
    run.add_argument("experiment", nargs="?", default=str(DEFAULT_EXPERIMENT), metavar="EXPERIMENT",
                     help="an experiment file, or the name of one in configs/experiments (default: default)")
    run.add_argument("--out", help="output folder (default: reports/runs/<experiment name>)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON instead of the table")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                     help="override one key, e.g. --set policy.low_bits=8 --set workload.batch_size=16")
    add_cache_argument(run)
    run.set_defaults(func=cmd_run)
    validate = subparsers.add_parser("validate", help="check an experiment or sweep file without simulating")
    validate.add_argument("file", metavar="FILE", help="an experiment or sweep file, or a preset name of either")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                          help="override one key before validating, as for run")
    validate.set_defaults(func=cmd_validate)
    schema = subparsers.add_parser("schema", help="print the JSON schema of an experiment file")
    schema.set_defaults(func=cmd_schema)
    check = subparsers.add_parser(
        "validate-hw", help="hold the gpu execution kind against published GPU measurements "
        "(configs/validation/gpu-measurements.yaml): table, batch slopes, figure")
    check.add_argument("--file", help="a validation set (default: configs/validation/gpu-measurements.yaml)")
    check.add_argument("--out", help="output folder (default: reports/validation)")
    check.set_defaults(func=cmd_validate_hw)


def format_table(summary: dict) -> str:
    """Gated run beside its static baseline; `change` is gated / baseline - 1 for every row (one sign
    convention: + means the number went up, whether that is good or bad)."""
    lines = [f"{'metric':<30}{'gated':>14}{'baseline':>14}{'change':>10}"]
    rows = [*SHORT_TABLE, ("state share of DRAM traffic (%)", "state_share_of_dram_traffic",
                           "baseline_state_share_of_dram_traffic", "{:,.1f}", 100.0)]
    for label, key, base_key, fmt, *scale in rows:
        factor = scale[0] if scale else 1.0
        value, base = summary[key] * factor, summary.get(base_key)
        base_text = fmt.format(base * factor) if base is not None else "-"
        change = f"{100 * (value / (base * factor) - 1):+.1f}%" if base else "-"
        lines.append(f"{label:<30}{fmt.format(value):>14}{base_text:>14}{change:>10}")
    lines.append(f"low-precision share of state writes: {summary['low_precision_share']:.1%}; "
                 f"SSM state on chip: {summary['ssm_state_sram_share']:.1%}")
    if "saving_dram_bytes_per_token_pct" in summary:
        lines.append(f"gating saves {summary['saving_dram_bytes_per_token_pct']:.1f}% of DRAM traffic per token "
                     f"(the claim under test: about 25%)")
    lines.append(f"analytic bound: {summary['bound_tokens_per_s']:,.0f} tokens/s "
                 f"(simulated / bound time = {summary['simulated_over_bound']:.3f})")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from hwsim.checks import check_experiment
    from hwsim.memory.calibration import resolve_calibration
    from hwsim.runner import run_experiment

    exp = load_experiment(args.experiment, args.overrides, calibrate=False)
    out = Path(args.out) if args.out else output_path(REPORTS_DIR / "runs", exp.name, key="name",
                                                       file=args.experiment)
    check_output_dir(out)
    check_experiment(exp, file=args.experiment)  # capacity and traces, before any output or calibration
    exp = resolve_calibration(exp)
    result = run_experiment(exp, out)
    if args.json:
        print(json.dumps(result.summary, indent=1, sort_keys=True))
        return 0
    print(f"{exp.name}: {exp.model.name} on {exp.hardware.name}, batch {exp.workload.batch_size}, "
          f"{exp.workload.steps} steps, policy {exp.policy.kind}")
    summary = result.summary
    if summary["phase"] != "prefill":
        print(format_table(summary))
    if summary["phase"] != "decode":
        print(format_phases(summary))
    print(f"wrote {out}/summary.json, resolved.yaml" + (", steps.parquet" if summary["phase"] != "prefill" else "")
          + (", kernels.csv" if result.kernels is not None else ""))
    return 0


MS = 1 / NS_PER_MS


def format_phases(summary: dict) -> str:
    """Prefill and end-to-end figures beside their roofline bounds."""
    lines = [(f"prefill: {summary['prefill_tokens']:,} prompt tokens in {summary['prefill_time_ns'] * MS:,.2f} ms "
              f"({summary['prefill_tokens_per_s']:,.0f} tokens/s; bound {summary['prefill_bound_time_ns'] * MS:,.2f} ms)")]
    if "tpot_ns" in summary:
        lines.append(f"time to first token {summary['ttft_ns'] * MS:,.2f} ms, per output token "
                     f"{summary['tpot_ns'] * MS:,.3f} ms (bound {summary['bound_tpot_ns'] * MS:,.3f}), to last token "
                     f"{summary['time_to_last_token_ns'] * MS:,.1f} ms; end to end "
                     f"{summary['e2e_tokens_per_s']:,.0f} tokens/s (bound {summary['bound_e2e_tokens_per_s']:,.0f})")
    return "\n".join(lines)


def cmd_validate(args: argparse.Namespace) -> int:
    """An experiment or a sweep file: everything `run` / `sweep` would load or refuse, short of
    simulating. Nothing is calibrated: the DRAM calibration is derived data that cannot be refused, and
    costs tens of seconds per configuration cold."""
    from hwsim.checks import check_experiment, is_sweep_document
    from hwsim.config.loading import named_file, read_yaml
    from hwsim.errors import HwsimInputError

    try:
        args.file = str(named_file(args.file, "experiments", "experiment"))
    except HwsimInputError:
        args.file = str(named_file(args.file, "sweeps", "experiment or sweep"))
    raw = read_yaml(Path(args.file))
    if is_sweep_document(raw):
        from hwsim.sweeps.spec import expand, load_sweep

        if args.overrides:
            raise HwsimInputError("--set applies to experiment files; put sweep changes in the file",
                                  file=args.file, key="--set")
        spec, file = load_sweep(args.file, raw=raw)
        points = expand(spec, file, calibrate=False)
        print(f"{args.file}: valid sweep ({len(points)} points, base {spec.base})")
        return 0
    exp = load_experiment(args.file, args.overrides, raw=raw, calibrate=False)
    check_experiment(exp, file=args.file)
    print(f"{args.file}: valid ({exp.model.name} on {exp.hardware.name}, policy {exp.policy.kind})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from hwsim.config.experiment import Experiment

    print(json.dumps(Experiment.model_json_schema(), indent=2))
    return 0


def cmd_validate_hw(args: argparse.Namespace) -> int:
    from hwsim.files import write_atomic, write_text_atomic
    from hwsim.validation import (
        VALIDATION_FILE,
        batch_slopes,
        figure,
        load_validation_set,
        markdown,
        run_validation,
    )

    validation = load_validation_set(args.file or VALIDATION_FILE)
    out = Path(args.out) if args.out else REPORTS_DIR / "validation"
    table = run_validation(validation)
    slopes = batch_slopes(table)
    write_atomic(out / "validation.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_text_atomic(out / "validation.md", markdown(table, slopes))
    figure(table, out / "validation.png")
    print(markdown(table, slopes), end="")
    print(f"wrote {out}/validation.csv, validation.md, validation.png")
    return 0
