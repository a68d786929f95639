"""`hwsim sweep`, `hwsim report`, `hwsim compare` (being built)."""


def register(subparsers) -> None:
    return None
