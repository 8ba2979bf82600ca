"""The names of the statement kinds, in one module that imports nothing.

Code that reads records without appending them (the audit, the offline certificate
verifier, reports) compares kinds by these names; importing a kind's own module would
bring in its storage. Each kind's module takes its name from here.
"""

from typing import Final

GENESIS: Final = "ledger.genesis"
PARTICIPANT_REGISTER: Final = "participant.register"
KEY_ROTATE: Final = "key.rotate"
KEY_REVOKE: Final = "key.revoke"
BATCH_REGISTER: Final = "batch.register"
ACCREDITATION_GRANT: Final = "accreditation.grant"
ACCREDITATION_WITHDRAW: Final = "accreditation.withdraw"
RULESET_PUBLISH: Final = "ruleset.publish"
GRADE_ISSUE: Final = "grade.issue"
GRADE_REVOKE: Final = "grade.revoke"
