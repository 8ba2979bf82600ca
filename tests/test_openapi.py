"""The OpenAPI document the API serves at ``/openapi.json`` is valid OpenAPI 3.1.

Checked by an independent validator (``openapi-spec-validator``), and by walking the
document: every ``$ref`` points at a component that exists. The bodies of
``POST /v1/statements`` and ``/v1/statements/bulk`` are documented by hand (the routes
parse the raw JSON themselves, to refuse floats and unknown members by field), so a
real signed statement is checked against the documented schemas too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api.app import create_app
from tests.conftest import LedgerEnv, attestation


@pytest.fixture
def document(sqlite_env: LedgerEnv) -> dict[str, Any]:
    return create_app(sqlite_env.ledger).openapi()


def refs(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    """Every ``$ref`` in ``node``, with the JSON pointer of the object that holds it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from refs(value, f"{where}/{i}")


def pointed(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    errors = [str(error) for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_every_ref_resolves_to_an_existing_component(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert found, "the document should reference its component schemas"
    components = document.get("components", {})
    dangling = []
    for where, ref in found:
        section, _, name = ref.removeprefix("#/components/").partition("/")
        if not ref.startswith("#/components/") or name not in components.get(section, {}):
            dangling.append(f"{where}: {ref}")
    assert dangling == []
    for _, ref in found:
        assert isinstance(pointed(document, ref), dict)


def statement_body_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    body = document["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    return body["content"]["application/json"]["schema"]


def body_validator(document: dict[str, Any], path: str) -> jsonschema.Draft202012Validator:
    """A JSON Schema 2020-12 validator of the documented body, resolving refs in the document."""
    schema = statement_body_schema(document, path)
    jsonschema.Draft202012Validator.check_schema(schema)
    registry = Registry().with_resource("", Resource(document, DRAFT202012))
    return jsonschema.Draft202012Validator(schema, registry=registry)


@pytest.mark.parametrize("path", ["/v1/statements", "/v1/statements/bulk"])
def test_the_hand_documented_bodies_are_self_contained(document: dict[str, Any], path: str) -> None:
    schema = statement_body_schema(document, path)
    assert "$defs" not in schema
    assert list(refs(schema)) == []


def test_a_signed_statement_matches_the_documented_bodies(
    document: dict[str, Any], sqlite_env: LedgerEnv
) -> None:
    signed = attestation(sqlite_env.operator_key).to_dict()
    one = body_validator(document, "/v1/statements")
    bulk = body_validator(document, "/v1/statements/bulk")
    assert list(one.iter_errors(signed)) == []
    assert list(bulk.iter_errors({"statements": [signed, signed]})) == []

    assert not one.is_valid({**signed, "extra": 1})
    assert not one.is_valid({**signed, "statement": {**signed["statement"], "extra": 1}})
    assert not bulk.is_valid({"statements": [{"signature": signed["signature"]}]})
    schema = statement_body_schema(document, "/v1/statements")
    assert schema["title"] == "SignedStatementModel"
    assert schema["properties"]["statement"]["title"] == "StatementModel"


# -- errors and statuses ---------------------------------------------------------------------
def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/") or path.startswith("/graphql"):
                yield path, method, operation


def test_every_refusal_is_documented_with_the_error_body(document: dict[str, Any]) -> None:
    """The API answers every refusal with ``{error, detail, field}``; FastAPI's own
    validation body (``HTTPValidationError``) is documented nowhere, because it is never
    sent."""
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, operation in operations(document):
        if path.startswith("/graphql"):
            continue
        for status in ("422", "503"):
            body = operation["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorModel"}, (path, method, status)


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("/v1/statements", {"201", "401", "403", "409", "413", "422", "503"}),
        ("/v1/records/{index}/disclosures", {"200", "401", "403", "404", "422", "503"}),
        ("/v1/evaluations/preview", {"200", "404", "413", "422", "503"}),
    ],
)
def test_routes_document_the_statuses_they_answer(
    document: dict[str, Any], path: str, statuses: set[str]
) -> None:
    (operation,) = document["paths"][path].values()
    assert set(operation["responses"]) == statuses


def test_the_preview_and_verify_bodies_are_documented(document: dict[str, Any]) -> None:
    preview = statement_body_schema(document, "/v1/evaluations/preview")
    assert set(preview["required"]) == {"smelter_id", "batch_id", "ruleset_id", "ruleset_version"}
    assert preview["additionalProperties"] is False
    bundle = statement_body_schema(document, "/v1/certificates/verify")
    assert {"format", "grade_index", "checkpoint", "status", "records"} <= set(bundle["required"])
    verdict = document["paths"]["/v1/certificates/verify"]["post"]["responses"]["200"]
    schema = pointed(document, verdict["content"]["application/json"]["schema"]["$ref"])
    assert set(schema["properties"]) == {"status", "valid", "reasons", "tree_size", "grade"}


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/v1/grades/{record_index}", "GradeView"),
        ("/v1/batches/{smelter_id}/{batch_id}/grades", "GradeList"),
        ("/v1/rulesets", "RulesetList"),
        ("/v1/rulesets/{ruleset_id}/{version}", "RulesetView"),
        ("/v1/records", "RecordsPageModel"),
        ("/v1/proofs/inclusion/{index}", "InclusionProofModel"),
        ("/v1/batches/{smelter_id}/{batch_id}", "BatchView"),
        ("/v1/batches", "BatchPage"),
        ("/v1/batches/{smelter_id}/{batch_id}/footprint", "FootprintPreview"),
        ("/v1/batches/{ns}/{batch_id}/lineage", "Lineage"),
        ("/v1/batches/{ns}/{batch_id}/custody", "Custody"),
        ("/v1/records/{index}/disclosures", "RecordDisclosures"),
        ("/v1/certificates/{grade_record_index}", "BundleModel"),
    ],
)
def test_typed_reads_document_their_answer(document: dict[str, Any], path: str, model: str) -> None:
    answer = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": f"#/components/schemas/{model}"}


def test_the_preview_answer_is_typed(document: dict[str, Any]) -> None:
    answer = document["paths"]["/v1/evaluations/preview"]["post"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/EvaluationPreview"}


def test_every_json_answer_is_a_typed_model(document: dict[str, Any]) -> None:
    """No route answers an undocumented object: each 2xx JSON answer names a component."""
    for path, method, operation in operations(document):
        if path.startswith("/graphql"):
            continue
        for status, response in operation["responses"].items():
            json_body = response.get("content", {}).get("application/json")
            if status.startswith("2") and json_body is not None:
                assert "$ref" in json_body["schema"], (method, path, json_body["schema"])
