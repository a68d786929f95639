"""`hwsim presets`: every preset a user can name, with one line each (hardware, models, DRAM
technologies, experiments, sweeps, traces)."""

from __future__ import annotations

import argparse
import textwrap

from hwsim.paths import CONFIGS_DIR

KINDS = ("hardware", "models", "dram", "experiments", "sweeps", "traces")


def register(subparsers: argparse._SubParsersAction) -> None:
    presets = subparsers.add_parser("presets", help="list the presets you can name, one line each",
                                    epilog="example: hwsim presets hardware")
    presets.add_argument("kind", nargs="?", choices=KINDS, help="only this kind (default: all)")
    presets.set_defaults(func=cmd_presets)


def _lines(kind: str) -> list[tuple[str, str]]:
    from hwsim.config.loading import read_yaml

    if kind == "traces":
        from hwsim.traces.catalog import catalog_frame

        frame = catalog_frame()
        return [(str(r["name"]), f"{r.get('domain', '')}, {int(r.get('tokens', 0)):,} tokens")
                for _, r in frame.iterrows()]
    rows = []
    for path in sorted((CONFIGS_DIR / kind).glob("*.yaml")):
        data = read_yaml(path)
        if kind == "hardware":
            kind_text = data.get("execution", {}).get("kind", "dataflow")
            text = f"{data.get('description', '')} [{kind_text}]"
        elif kind == "models":
            text = (f"{data.get('architecture')}, {data.get('n_layers')} layers, d_model {data.get('d_model')}, "
                    f"d_state {data.get('d_state')}")
        elif kind == "dram":
            org = data.get("organisation", {})
            text = f"{data.get('kind')}: {org.get('declared_peak_bandwidth_GBps')} GB/s per stack or device"
        else:
            text = str(data.get("description", ""))
        rows.append((path.stem, text))
    return rows


def cmd_presets(args: argparse.Namespace) -> int:
    for kind in [args.kind] if args.kind else KINDS:
        print(f"{kind}:")
        for name, text in _lines(kind):
            print(f"  {name:<24} {textwrap.shorten(text, width=100 - 27, placeholder=' ...')}")
    return 0
