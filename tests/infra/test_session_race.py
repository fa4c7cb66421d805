"""A request that does not change the session does not send the session cookie back: a poll begun before a sign-in
(the phone simulator's, the inbox's) cannot answer after it with the old session and undo the sign-in."""
from __future__ import annotations


def test_an_unchanged_session_is_not_sent_again_so_a_slow_poll_cannot_undo_a_sign_in(app, client):
    signed_in = client.get("/h5/dev-login?openid=oRace00001&next=/h5/service")
    assert "session=" in signed_in.headers.get("Set-Cookie", "")
    poll = client.get("/sandbox/outbox?openid=oRace00001")
    assert poll.status_code == 200 and "Set-Cookie" not in poll.headers
    page = client.get("/h5/service")
    assert page.status_code == 200
