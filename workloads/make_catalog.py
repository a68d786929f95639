"""Write catalog.yaml from the provenance inside the shipped trace files (run by make_traces.sh).

Only the name and domain are stated here; everything else is copied from each file, so the catalog
cannot drift from the data (tests/test_traces_catalog.py checks they agree).
"""

from pathlib import Path

import yaml

from hwsim.traces.catalog import Catalog, entry_from_provenance
from hwsim.traces.format import read_provenance

HERE = Path(__file__).resolve().parent
#: name -> domain, in the order of the default workload.
DOMAINS = {
    "prose-pydocs": "prose",
    "prose-pydocs-types": "prose",
    "code-stdlib": "code",
    "code-stdlib-fractions": "code",
    "generated-greedy-essay": "generated",
    "generated-sampled-essay": "generated",
    "generated-greedy-code": "generated",
}
HEADER = """\
# Shipped entropy traces: the default workload of hwsim (hwsim.traces.DEFAULT_TRACE_SET).
# Written by workloads/make_catalog.py from each file's `hwsim.provenance` metadata; do not edit by hand.
# `command` re-creates the file when run in workloads/ (all of them: bash workloads/make_traces.sh).
# Columns of every file: position, token_id, token_text, entropy_bits, top1_prob, surprisal_bits.
"""


def main() -> None:
    entries = []
    for name, domain in DOMAINS.items():
        file = f"traces/{name}.parquet"
        entries.append(entry_from_provenance(name, domain, file, read_provenance(HERE / file)))
    Catalog.model_validate({"traces": entries})
    body = yaml.safe_dump({"traces": entries}, sort_keys=False, allow_unicode=True, width=110)
    (HERE / "catalog.yaml").write_text(HEADER + body, encoding="utf-8")
    print(f"wrote {HERE / 'catalog.yaml'}: {len(entries)} traces, {sum(e['tokens'] for e in entries)} tokens")


if __name__ == "__main__":
    main()
