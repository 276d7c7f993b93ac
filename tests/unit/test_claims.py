import logging

from ryu_apps.claims import CLAIM_TIMEOUT, WARN_EVERY, Claims, Contest, Outcome

DPID = 0x2a
REAL, FAKE, THIRD = object(), object(), object()


def contested(now=10.0):
    claims = Claims()
    assert claims.claim(DPID, REAL, '10.0.0.5:40001', 0.0) == Outcome(DPID, connect=REAL)
    contest = claims.claim(DPID, FAKE, '192.0.2.9:51000', now)
    assert isinstance(contest, Contest)
    contest.xid = 77
    return claims, contest


def test_the_first_connection_holds_its_dpid_and_only_its_messages_count():
    claims = Claims()
    assert claims.claim(DPID, REAL, '10.0.0.5:40001', 0.0) == Outcome(DPID, connect=REAL)
    assert claims.claim(DPID, REAL, '10.0.0.5:40001', 1.0) == Outcome(DPID)   # no change
    assert claims.holds(DPID, REAL) and not claims.holds(DPID, FAKE)
    assert not claims.holds(None, REAL)     # a connection still in its handshake


def test_a_second_claim_is_logged_with_both_peers_and_the_holder_is_asked(caplog):
    with caplog.at_level(logging.WARNING, logger='ryu_apps.claims'):
        claims, contest = contested()
    assert contest.holder.conn is REAL and contest.deadline == 10.0 + CLAIM_TIMEOUT
    (warning,) = caplog.records
    assert '192.0.2.9:51000' in warning.message and '10.0.0.5:40001' in warning.message
    assert '000000000000002a' in warning.message
    assert claims.holds(DPID, REAL) and not claims.holds(DPID, FAKE)  # meanwhile: the holder


def test_a_holder_that_answers_keeps_the_dpid_and_the_newcomer_is_refused(caplog):
    claims, _ = contested()
    assert claims.answered(FAKE, 77, 10.1) is None         # not the holder's answer
    assert claims.answered(REAL, 76, 10.1) is None         # not our echo
    with caplog.at_level(logging.WARNING, logger='ryu_apps.claims'):
        assert claims.answered(REAL, 77, 10.1) == Outcome(DPID, close=FAKE)
    assert 'refused' in caplog.records[-1].message
    assert claims.holds(DPID, REAL) and claims.contests == {}
    assert claims.tick(20.0) == ([], None)                  # nothing left to decide
    assert claims.gone(FAKE) == []                         # its close changes nothing


def test_a_holder_that_does_not_answer_in_time_is_taken_to_be_gone():
    claims, contest = contested()
    assert claims.tick(10.0 + CLAIM_TIMEOUT - 0.1) == ([], contest.deadline)
    assert claims.tick(10.0 + CLAIM_TIMEOUT) == ([Outcome(DPID, connect=FAKE, close=REAL)],
                                                 None)
    assert claims.holds(DPID, FAKE)
    assert claims.gone(REAL) == []     # the old connection's end, once closed: nothing


def test_a_holder_whose_connection_dies_meanwhile_hands_over_at_once():
    claims, _ = contested()
    assert claims.gone(REAL) == [Outcome(DPID, connect=FAKE, close=REAL)]
    assert claims.holds(DPID, FAKE) and claims.contests == {}


def test_a_newcomer_that_goes_away_ends_its_claim_and_a_third_is_refused_meanwhile():
    claims, _ = contested()
    assert claims.claim(DPID, THIRD, '192.0.2.10:1', 10.5) == Outcome(DPID, close=THIRD)
    assert claims.gone(FAKE) == []
    assert claims.contests == {} and claims.holds(DPID, REAL)
    assert claims.gone(REAL) == [Outcome(DPID)]            # then the dpid is free
    assert claims.claim(DPID, THIRD, '192.0.2.10:2', 11.0) == Outcome(DPID, connect=THIRD)


def test_claims_are_warned_of_once_a_minute_per_dpid_with_a_count_of_the_rest(caplog):
    claims = Claims()
    claims.claim(DPID, REAL, 'a:1', 0.0)
    with caplog.at_level(logging.WARNING, logger='ryu_apps.claims'):
        for i in range(5):       # an impostor reconnecting every second, refused each time
            contest = claims.claim(DPID, object(), 'x:%d' % i, 1.0 + i)
            contest.xid = i
            claims.answered(REAL, i, 1.5 + i)
        claims.claim(DPID, object(), 'x:9', 1.0 + WARN_EVERY + 1)
    claimed = [r.message for r in caplog.records if 'claims it' in r.message]
    assert len(claimed) == 2 and '4 more such claims' in claimed[1]
    refused = [r.message for r in caplog.records if 'refused' in r.message]
    assert len(refused) == 1      # the end of each story told, not of the others
