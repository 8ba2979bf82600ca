"""Certificate bundles: fetched over REST, verified offline, revoked, refreshed, tampered."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger import keys, statements
from ledger.bootstrap import init_ledger
from ledger.certificates import check_freshness, verify_bundle
from ledger.checkpoints import Checkpoint, NoteSigner
from ledger.demo import demo_file, load_demo
from ledger.disclosure.format import member
from ledger.disclosure.reveal import disclose
from ledger.grading.facts_from_batch import (
    PUBLIC_FACTS_V2,
    batch_facts,
    computed_with,
    facts_from_registration,
    public_facts,
)
from ledger.settings import Settings
from ledger.storage.batches import BatchRepository
from ledger.storage.db import read_session
from ledger.storage.disclosures import DisclosureRepository
from ledger.storage.repository import Repository
from ledger.tokens import issue_token
from tests.conftest import LedgerEnv, make_env
from tests.grading_support import BATCH, CENTRE, SMELTER, grant, issue, set_up_grading
from tests.support import CliLedger, serving

Bundle = dict[str, Any]


@pytest.fixture
def graded(env: LedgerEnv) -> LedgerEnv:
    return set_up_grading(env)


def fetch(env: LedgerEnv, grade_index: int) -> Bundle:
    response = TestClient(create_app(env.ledger)).get(f"/v1/certificates/{grade_index}")
    assert response.status_code == 200, response.text
    return response.json()


def revoke(env: LedgerEnv, grade_index: int, reason: str = "data error") -> int:
    payload = {"grade_record_index": grade_index, "reason": reason}
    return env.append("grade.revoke", payload, env.participant_keys[CENTRE]).index


def test_a_fetched_certificate_verifies_offline(graded: LedgerEnv) -> None:
    grade_index = issue(graded, "tier-2").index
    bundle = fetch(graded, grade_index)

    verdict = verify_bundle(bundle, graded.ledger.verifier_key)

    assert verdict.status == "valid", verdict.reasons
    assert verdict.tree_size == graded.ledger.tree_size()
    assert f"valid as of checkpoint {verdict.tree_size}" in verdict.reasons[0]
    summary = verdict.grade
    assert (summary.smelter_id, summary.batch_id, summary.grade) == (SMELTER, BATCH, "tier-2")
    assert summary.issuer_id == CENTRE and summary.revoked_index is None
    assert set(bundle["records"]) == {
        "genesis",
        "grade",
        "batch",
        "ruleset",
        "accreditation",
        "keys",
    }


def test_expiry_is_judged_on_the_day_given(graded: LedgerEnv) -> None:
    bundle = fetch(graded, issue(graded, "tier-2").index)
    expires = verify_bundle(bundle, graded.ledger.verifier_key).grade.expires_on

    verdict = verify_bundle(bundle, graded.ledger.verifier_key, today=date.fromisoformat(expires))

    assert verdict.status == "expired"
    assert f"expired on {expires}" in verdict.reasons[0]


def test_revocation_shows_in_new_bundles_and_old_ones_stay_valid_as_of_their_checkpoint(
    graded: LedgerEnv,
) -> None:
    grade_index = issue(graded, "tier-2").index
    old = fetch(graded, grade_index)
    revoked_at = revoke(graded, grade_index, "metering error")
    new = fetch(graded, grade_index)
    vkey = graded.ledger.verifier_key

    now = verify_bundle(new, vkey)
    assert now.status == "revoked"
    assert f"revoked at record {revoked_at}: metering error" in now.reasons[0]
    assert "revocation" in new["records"]

    then = verify_bundle(old, vkey)
    assert then.status == "valid"
    assert f"valid as of checkpoint {old_size(old)}" in then.reasons[0]


def old_size(bundle: Bundle) -> int:
    return Checkpoint.parse_body(bundle["checkpoint"].split("\n\n")[0] + "\n").size


def test_freshness_against_the_ledger_reveals_a_later_revocation(graded: LedgerEnv) -> None:
    grade_index = issue(graded, "tier-2").index
    old = fetch(graded, grade_index)
    revoke(graded, grade_index)
    http = TestClient(create_app(graded.ledger))

    verdict = check_freshness(old, graded.ledger.verifier_key, "http://testserver", http=http)

    assert verdict.status == "revoked"
    assert verdict.tree_size == graded.ledger.tree_size()
    assert f"checkpoint {old_size(old)} of the bundle is consistent" in verdict.reasons[-1]


def test_freshness_refuses_a_ledger_whose_history_forked(tmp_path: Path) -> None:
    """A second ledger under the same log key (a fork) cannot prove the bundle's checkpoint
    consistent with its own, even where it holds a grade at the same index."""
    original = make_env(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a")
    (tmp_path / "b").mkdir()
    for name in ("log-key.pem", "operator-key.pem"):
        shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
    fork = make_env(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b")
    indexes = [issue(set_up_grading(env), "tier-2").index for env in (original, fork)]
    assert indexes[0] == indexes[1] and original.ledger.verifier_key == fork.ledger.verifier_key
    bundle = fetch(original, indexes[0])
    http = TestClient(create_app(fork.ledger))

    verdict = check_freshness(bundle, original.ledger.verifier_key, "http://testserver", http=http)

    assert verdict.status == "invalid"
    assert "does not extend" in verdict.reasons[0] or "forked" in verdict.reasons[0]


def test_rest_refusals_and_server_side_verify(graded: LedgerEnv) -> None:
    grade_index = issue(graded, "tier-2").index
    client = TestClient(create_app(graded.ledger))
    missing = client.get(f"/v1/certificates/{grade_index - 1}")
    assert missing.status_code == 404
    assert missing.json()["field"] == "grade_record_index"

    bundle = client.get(f"/v1/certificates/{grade_index}").json()
    assert client.post("/v1/certificates/verify", json=bundle).json()["status"] == "valid"
    bundle["grade_index"] = grade_index - 1
    verdict = client.post("/v1/certificates/verify", json=bundle).json()
    assert verdict["status"] == "invalid" and verdict["valid"] is False


# -- tampering -------------------------------------------------------------------------
def change_grade(bundle: Bundle) -> None:
    bundle["records"]["grade"]["record"]["statement"]["payload"]["grade"] = "tier-1"


def change_batch_footprint(bundle: Bundle) -> None:
    bundle["records"]["batch"]["record"]["statement"]["payload"]["declared_footprint"][
        "kg_co2e_per_t"
    ] -= 100


def change_proof_hash(bundle: Bundle) -> None:
    proof = bundle["records"]["grade"]["inclusion_proof"]
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]


def sign_checkpoint_with_another_key(bundle: Bundle) -> None:
    text = bundle["checkpoint"].split("\n\n")[0] + "\n"
    origin = text.split("\n")[0]
    bundle["checkpoint"] = NoteSigner(origin, keys.generate()).sign(text)


def swap_batch_and_ruleset(bundle: Bundle) -> None:
    records = bundle["records"]
    records["batch"], records["ruleset"] = records["ruleset"], records["batch"]


def drop_key_records(bundle: Bundle) -> None:
    bundle["records"]["keys"] = bundle["records"]["keys"][:1]


def point_at_another_record(bundle: Bundle) -> None:
    bundle["grade_index"] -= 1


def claim_a_revocation(bundle: Bundle) -> None:
    bundle["status"] = bundle["status"].replace("active", "revoked 1")


def resign_statement_with_own_key(bundle: Bundle) -> None:
    """A forger re-signs the grade with a key the log never registered."""
    record = bundle["records"]["grade"]["record"]
    forger = keys.generate()
    statement = statements.Statement(**{**record["statement"], "signer": keys.key_id(forger)})
    signed = statements.sign(statement, forger).to_dict()
    record["statement"], record["signature"] = signed["statement"], signed["signature"]


TAMPERINGS: list[Callable[[Bundle], None]] = [
    change_grade,
    change_batch_footprint,
    change_proof_hash,
    sign_checkpoint_with_another_key,
    swap_batch_and_ruleset,
    drop_key_records,
    point_at_another_record,
    claim_a_revocation,
    resign_statement_with_own_key,
]


def test_tampered_bundles_are_rejected_with_a_reason(graded: LedgerEnv) -> None:
    bundle = fetch(graded, issue(graded, "tier-2").index)
    vkey = graded.ledger.verifier_key
    for tamper in TAMPERINGS:
        changed = copy.deepcopy(bundle)
        tamper(changed)
        verdict = verify_bundle(changed, vkey)
        assert verdict.status == "invalid", tamper.__name__
        assert verdict.reasons and verdict.reasons[0], tamper.__name__


def test_every_record_field_is_covered(graded: LedgerEnv) -> None:
    """Changing any value in any record of the bundle breaks verification."""
    bundle = fetch(graded, issue(graded, "tier-2").index)
    vkey = graded.ledger.verifier_key
    entries = [(role, 0) for role in bundle["records"] if role != "keys"]
    entries += [("keys", n) for n in range(len(bundle["records"]["keys"]))]
    for role, n in entries:
        for name in ("index", "prev", "integrated_at", "signature"):
            changed = copy.deepcopy(bundle)
            entry = changed["records"][role]
            record = (entry[n] if role == "keys" else entry)["record"]
            record[name] = 1 if name == "index" and record[name] != 1 else "x" + str(record[name])
            assert verify_bundle(changed, vkey).status == "invalid", (role, n, name)


def test_a_revoked_bundle_cannot_hide_its_revocation(graded: LedgerEnv) -> None:
    grade_index = issue(graded, "tier-2").index
    revoke(graded, grade_index)
    bundle = fetch(graded, grade_index)
    del bundle["records"]["revocation"]
    verdict = verify_bundle(bundle, graded.ledger.verifier_key)
    assert verdict.status == "invalid"
    assert "revocation is missing" in verdict.reasons[0]


def test_another_logs_key_rejects_the_bundle(graded: LedgerEnv) -> None:
    bundle = fetch(graded, issue(graded, "tier-2").index)
    other = NoteSigner(graded.ledger.origin, keys.generate()).verifier_key()
    assert verify_bundle(bundle, other).status == "invalid"
    assert verify_bundle("not a bundle", graded.ledger.verifier_key).status == "invalid"


def test_offline_facts_match_the_ledgers_for_every_demo_batch(tmp_path: Path) -> None:
    """The verifier's facts (from the signed payload opened with its disclosures, and what
    the ledger stated about the lots a batch named) equal the read model's, and the public
    ones follow from the signed payload alone."""
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'l.db'}")
    ledger = init_ledger(settings).ledger
    load_demo(ledger, settings, tmp_path / "keys")
    with read_session(ledger.engine) as session:
        for payload in demo_file("batches.json"):
            row = BatchRepository(session).get(payload["smelter_id"], payload["batch_id"])
            stored = Repository(session).record(row.record_index).statement["payload"]
            opened = disclose(
                stored,
                DisclosureRepository(session).of_records([row.record_index])[row.record_index],
            )
            assert opened == payload
            expected = batch_facts(row, stored)
            derived = json.loads(row.derived)
            lots = derived.get("ledger_lots", [])
            pins = computed_with(derived)
            recomputed = facts_from_registration(opened, pins=pins, ledger_lots=lots)
            assert recomputed == expected, row.batch_id
            public = public_facts(stored, lots)
            assert public == {name: expected.to_dict()[name] for name in PUBLIC_FACTS_V2}
    ledger.engine.dispose()


def test_the_accreditation_must_be_the_issuers(graded: LedgerEnv) -> None:
    """Another centre's genuine grant, proven at the same checkpoint, does not do."""
    other_key = graded.register("centre-b", "evaluation_centre")
    grant(graded, "centre-b")
    ours = issue(graded, "tier-2").index
    theirs = issue(graded, "tier-3", key=other_key).index
    bundle, other = fetch(graded, ours), fetch(graded, theirs)
    assert bundle["checkpoint"] == other["checkpoint"]
    vkey = graded.ledger.verifier_key
    assert verify_bundle(other, vkey).status == "valid"

    bundle["records"]["accreditation"] = other["records"]["accreditation"]

    verdict = verify_bundle(bundle, vkey)
    assert verdict.status == "invalid"
    assert "not for the grade's issuer" in verdict.reasons[0]


def test_cli_fetches_over_http_and_checks_freshness_against_the_server(
    graded: LedgerEnv, tmp_path: Path
) -> None:
    grade_index = issue(graded, "tier-2").index
    vkey = graded.ledger.verifier_key
    cli = CliLedger(tmp_path)
    bundle_file = tmp_path / "cert.json"
    with serving(graded.ledger) as url:
        fetched = cli.run("certificate", "get", grade_index, "--server", url, "-o", bundle_file)
        assert fetched.exit_code == 0, fetched.output
        current = cli.run("certificate", "verify", bundle_file, "--log-key", vkey, "--against", url)
        assert current.exit_code == 0, current.output
        revoke(graded, grade_index, "supplier data withdrawn")
        offline = cli.run("certificate", "verify", bundle_file, "--log-key", vkey)
        fresh = cli.run("certificate", "verify", bundle_file, "--log-key", vkey, "--against", url)

    size = old_size(json.loads(bundle_file.read_text()))
    assert offline.exit_code == 0
    assert f"valid as of checkpoint {size}" in offline.stdout
    assert fresh.exit_code == 1
    lines = fresh.stdout.splitlines()
    assert lines[0].startswith("revoked: ") and "supplier data withdrawn" in lines[0]
    assert lines[1] == (
        f"revoked: checkpoint {size} of the bundle is consistent with the ledger's "
        f"checkpoint {graded.ledger.tree_size()}"
    )


def test_cli_refuses_a_bad_log_key_and_a_missing_file(tmp_path: Path) -> None:
    cli = CliLedger(tmp_path)
    missing = cli.run("certificate", "verify", tmp_path / "nope.json", "--log-key", "x+y+z")
    assert "nope.json" in cli.error_line(missing)
    (tmp_path / "b.json").write_text("{}")
    bad_key = cli.run("certificate", "verify", tmp_path / "b.json", "--log-key", "x+y+z")
    assert bad_key.exit_code == 1
    assert bad_key.stdout.startswith("invalid: ")


# -- with the batch's disclosures ----------------------------------------------------------
def batch_disclosures(env: LedgerEnv, bundle: Bundle) -> list[Any]:
    index = bundle["records"]["batch"]["record"]["index"]
    with read_session(env.ledger.engine) as session:
        return DisclosureRepository(session).of_records([index])[index]


def test_a_certificate_verifies_without_disclosures_and_agrees_with_them(
    graded: LedgerEnv,
) -> None:
    bundle = fetch(graded, issue(graded, "tier-2").index)
    assert "ac_power_kwh_per_t" not in json.dumps(bundle)
    vkey = graded.ledger.verifier_key
    assert verify_bundle(bundle, vkey).status == "valid"

    disclosures = batch_disclosures(graded, bundle)
    verdict = verify_bundle(bundle, vkey, disclosures=disclosures)

    assert verdict.status == "valid", verdict.reasons
    assert verdict.reasons[-1] == f"facts recomputed from {len(disclosures)} disclosures agree"


def test_one_character_changed_in_a_disclosure_is_named(graded: LedgerEnv) -> None:
    bundle = fetch(graded, issue(graded, "tier-2").index)
    disclosures = batch_disclosures(graded, bundle)
    position = next(i for i, d in enumerate(disclosures) if d.name == "anode_sulphur_pct")
    original = disclosures[position]
    disclosures[position] = member(original.name, original.value.replace("1", "2"), original.salt)

    verdict = verify_bundle(bundle, graded.ledger.verifier_key, disclosures=disclosures)

    assert verdict.status == "invalid"
    assert verdict.reasons == (
        f"disclosure {position} (member anode_sulphur_pct) does not match any digest of the"
        f" batch record {bundle['records']['batch']['record']['index']}",
    )


def test_disclosures_that_open_to_other_facts_are_named(graded: LedgerEnv) -> None:
    """Genuine disclosures, but one withheld: the recomputed footprint differs from the
    grade's signed facts, and the verifier says which fact."""
    bundle = fetch(graded, issue(graded, "tier-2").index)
    disclosures = [d for d in batch_disclosures(graded, bundle) if d.name != "alumina_kg_per_t"]

    verdict = verify_bundle(bundle, graded.ledger.verifier_key, disclosures=disclosures)

    assert verdict.status == "invalid"
    assert verdict.reasons[0].startswith("fact computed_total_kg_co2e_per_t of the grade is")


def test_cli_verifies_with_the_disclosures_a_reader_may_fetch(
    graded: LedgerEnv, tmp_path: Path
) -> None:
    grade_index = issue(graded, "tier-2").index
    vkey = graded.ledger.verifier_key
    cli = CliLedger(tmp_path)
    bundle_file, opened = tmp_path / "cert.json", tmp_path / "disclosures.json"
    centre_token = issue_token(graded.ledger.engine, CENTRE).token
    with serving(graded.ledger) as url:
        got = cli.run("certificate", "get", grade_index, "--server", url, "-o", bundle_file)
        assert got.exit_code == 0, got.output
        batch_index = json.loads(bundle_file.read_text())["records"]["batch"]["record"]["index"]
        anonymous = cli.run("disclosure", "get", batch_index, "--server", url)
        fetched = cli.run(
            "disclosure", "get", batch_index, "--server", url, "--token", centre_token, "-o", opened
        )
    assert cli.error_line(anonymous).startswith("error: authorization: the disclosures of")
    assert fetched.exit_code == 0, fetched.output

    verified = cli.run(
        "certificate", "verify", bundle_file, "--log-key", vkey, "--disclosures", opened
    )

    assert verified.exit_code == 0, verified.output
    assert "disclosures agree" in verified.stdout
