"""Write the GraphQL schema's SDL to schemas/graphql/schema.graphql (the checked-in copy).

    python scripts/export_graphql_schema.py          # rewrite the file
    python scripts/export_graphql_schema.py --check  # exit 1 if the file differs from the code

tests/test_graphql.py fails when the checked-in SDL and the code disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDL_PATH = ROOT / "schemas" / "graphql" / "schema.graphql"


def current_sdl() -> str:
    sys.path.insert(0, str(ROOT))
    from api.graphql import schema

    return schema.as_str() + "\n"


def main() -> int:
    sdl = current_sdl()
    if "--check" in sys.argv[1:]:
        if not SDL_PATH.exists() or SDL_PATH.read_text() != sdl:
            print(f"{SDL_PATH} is out of date: run python scripts/export_graphql_schema.py")
            return 1
        return 0
    SDL_PATH.write_text(sdl)
    print(f"wrote {SDL_PATH} ({len(sdl.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
