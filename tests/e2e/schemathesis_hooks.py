"""Schemathesis hooks for fuzzing Parley (loaded by test_schemathesis.py through SCHEMATHESIS_HOOKS).

docs/openapi.yaml declares two kinds of value whose validity JSON Schema cannot spell out, so the fuzzer is taught to
make valid ones here; invalid ones still come from the document (wrong type, wrong pattern, too long):
- `format: page-cursor`: an opaque `nextCursor`, base64url of the JSON position of a page's last item. Positions are
  drawn with every key either list route reads, so one cursor is valid for both `GET /users` and `GET /chats`.
- `format: binary` (the only binary fields are images): the bytes of a JPEG, PNG, GIF or WebP image.
In `POST /api/v1/chats` two ids are sent as the partner's ($PARLEY_FUZZ_PARTNER_ID) instead: the caller's own (a chat
with oneself is 400 `invalid_members`, as the document says, but no schema can rule out that one id), and the
stranger's ($PARLEY_FUZZ_STRANGER_ID), who must stay out of the caller's chats for the object-level check to mean
something: the stranger must not be able to read any of them.
In `PUT` and `DELETE /api/v1/blocks/{userId}` the fuzzing users' own ids (blocking oneself is 400 `invalid_user`; no
schema can rule out that one id either) are sent as the partner's.
"""

from __future__ import annotations

import base64
import json
import os

import schemathesis
from hypothesis import strategies as st
from schemathesis.core.file_samples import FILE_SAMPLES

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def encode_cursor(position: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, ensure_ascii=False).encode()).decode().rstrip("=")


schemathesis.openapi.format(
    "page-cursor",
    st.fixed_dictionaries({"name": TEXT, "id": TEXT, "u": INT64, "i": TEXT}).map(encode_cursor),
)
schemathesis.openapi.format(
    "binary",
    st.sampled_from([FILE_SAMPLES[kind] for kind in ("png", "jpg", "gif", "webp")]),
)


SELF_ID = os.environ.get("PARLEY_FUZZ_SELF_ID")
PARTNER_ID = os.environ.get("PARLEY_FUZZ_PARTNER_ID")
STRANGER_ID = os.environ.get("PARLEY_FUZZ_STRANGER_ID")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.label in ("PUT /api/v1/blocks/{userId}", "DELETE /api/v1/blocks/{userId}") and PARTNER_ID:
        parameters = dict(case.path_parameters or {})
        if parameters.get("userId") in (SELF_ID, STRANGER_ID):
            parameters["userId"] = PARTNER_ID
            case.path_parameters = parameters
        return
    if case.operation.label != "POST /api/v1/chats" or not isinstance(case.body, dict) or not PARTNER_ID:
        return
    replaced = (SELF_ID, STRANGER_ID)
    body = dict(case.body)
    if isinstance(body.get("userId"), str) and body["userId"] in replaced:
        body["userId"] = PARTNER_ID
    if isinstance(body.get("memberIds"), list):
        body["memberIds"] = [PARTNER_ID if isinstance(member, str) and member in replaced else member
                             for member in body["memberIds"]]
    case.body = body
