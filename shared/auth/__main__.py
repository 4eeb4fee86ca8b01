"""``python -m shared.auth mint --site north --role clinician``: a development token, printed."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from shared.auth.permissions import Role
from shared.auth.tokens import mint_dev_token


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.auth")
    commands = parser.add_subparsers(dest="command", required=True)
    mint = commands.add_parser("mint", help="mint a development token (signed with var/auth's development key)")
    mint.add_argument("--site", required=True, help="the site, or 'network' for network_admin")
    mint.add_argument("--role", required=True, action="append", choices=[r.value for r in Role])
    mint.add_argument("--sub", help="the user's id (default dev-<role>-<site>)")
    mint.add_argument("--name", help="the user's display name")
    mint.add_argument("--hours", type=float, default=12.0)
    mint.add_argument(
        "--key-dir",
        type=Path,
        # The services' own: KAPNET_VAR_DIR/auth, so a token minted here is one they trust.
        default=Path(os.environ.get("KAPNET_VAR_DIR", "var")) / "auth",
        help="where the development key lives (default: $KAPNET_VAR_DIR/auth, else var/auth)",
    )
    args = parser.parse_args()
    print(mint_dev_token(args.key_dir, site=args.site, roles=args.role, sub=args.sub, name=args.name, hours=args.hours))


if __name__ == "__main__":
    main()
