"""OpenAPI request bodies for routes that parse their raw JSON themselves.

Those routes take the body the edge read strictly (``BodyDep``, ``api/limits.py``) and
parse it into their own types, so FastAPI sees no body model; ``body_doc`` documents one
from a pydantic model instead, as ``openapi_extra``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def _inline_refs(node: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/X"}`` replaced by (a copy of) ``defs[X]``."""
    if isinstance(node, list):
        return [_inline_refs(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in seen:  # a recursive model cannot be inlined: fail at import, not in /docs
            raise ValueError(f"recursive schema {' -> '.join((*seen, name))}")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**_inline_refs(defs[name], defs, (*seen, name)), **siblings}
    return {key: _inline_refs(value, defs, seen) for key, value in node.items()}


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses its raw JSON itself (``BodyDep``).

    FastAPI registers in ``components.schemas`` only the models it parses, so the
    schema is made self-contained: the nested models pydantic puts under ``$defs``
    are inlined where they are used (each keeps its ``title``), leaving no ``$ref``
    that could point at a component nobody registered.
    """
    schema = model.model_json_schema()
    schema = _inline_refs(schema, schema.pop("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
