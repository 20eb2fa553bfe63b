"""How the SDK's send_stream packs emails into requests (pure logic)."""

from postwire.v1 import email_service_pb2 as pb
from postwire_client.send_stream import _PACK, _runs


def _email(n: int) -> pb.SendRequest:
    return pb.SendRequest(subject=str(n))


def test_consecutive_sequences_share_a_request_and_gaps_start_a_new_one() -> None:
    unacked = [(n, _email(n)) for n in (0, 1, 2, 5, 6, 9)]
    requests = list(_runs(unacked))
    assert [(r.sequence, [m.subject for m in r.messages]) for r in requests] == [
        (0, ["0", "1", "2"]), (5, ["5", "6"]), (9, ["9"]),
    ]


def test_a_long_run_is_split_at_the_pack_size() -> None:
    requests = list(_runs([(n, _email(n)) for n in range(_PACK * 2 + 1)]))
    assert [(r.sequence, len(r.messages)) for r in requests] == [(0, _PACK), (_PACK, _PACK), (2 * _PACK, 1)]
