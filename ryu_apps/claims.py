"""Which connection speaks for each switch (dpid).

Ryu accepts any connection on its OpenFlow port, and the peer says which dpid it is. A
second connection claiming a dpid that is connected already is one of two things:
* the same switch back before we saw its old connection die (a cut nobody told us of:
  Ryu sends no echo requests by default, so a dead TCP peer can go unnoticed for long);
* another peer with that dpid: a bridge misconfigured with another's datapath-id, or a
  "switch" made up to take over a real bridge's probes.

The holder keeps the dpid as long as it is alive. The newcomer waits while the holder is
asked for an echo reply: if the holder answers within CLAIM_TIMEOUT, the newcomer is
refused (closed); if not, or if the holder's connection dies meanwhile, the holder is
closed and the newcomer takes over. So a live switch is never displaced by whoever can
reach our port, and a switch that really came back takes over within seconds. Either
way a warning names both peers (at most one a WARN_EVERY per dpid, with a count of the
others). A third claim during a contest is refused at once.

Like the rest of the core, this has no event loop: the shim passes connections (opaque
objects), their peers' addresses and the time, calls `tick(now)` at the deadline it
returns, and does what the answers say.
"""
import logging
from dataclasses import dataclass

LOG = logging.getLogger(__name__)
CLAIM_TIMEOUT = 3.0
WARN_EVERY = 60.0


@dataclass(eq=False)
class Holder:
    conn: object
    peer: str


@dataclass(eq=False)
class Contest:
    """A newcomer's claim to a connected dpid, while the holder is asked."""
    dpid: int
    holder: Holder
    challenger: Holder
    deadline: float
    xid: int | None = None      # of the echo request the holder is to answer
    told: bool = False          # its start was logged: its end is too


@dataclass(frozen=True)
class Outcome:
    """What the shim does: `connect` takes the dpid over (its switch session starts;
    the old one's probes end), `close` goes."""
    dpid: int
    connect: object | None = None
    close: object | None = None


class Claims:
    def __init__(self, timeout: float = CLAIM_TIMEOUT):
        self.timeout = timeout
        self.holders: dict[int, Holder] = {}
        self.contests: dict[int, Contest] = {}
        self._warned: dict[int, tuple[float, int]] = {}   # dpid -> (at, claims not logged)

    def holds(self, dpid: int | None, conn) -> bool:
        """Whether `conn` speaks for `dpid`: only its messages reach the core."""
        holder = self.holders.get(dpid)
        return holder is not None and holder.conn is conn

    def holder(self, dpid: int):
        holder = self.holders.get(dpid)
        return holder and holder.conn

    def claim(self, dpid: int, conn, peer: str, now: float) -> Outcome | Contest:
        """A connection says it is `dpid`: it holds it at once (Outcome.connect) if
        nobody does; a Contest if someone does (ask contest.holder.conn for an echo,
        and set contest.xid); refused (Outcome.close) if a contest is under way."""
        holder = self.holders.get(dpid)
        if holder is None:
            self.holders[dpid] = Holder(conn, peer)
            return Outcome(dpid, connect=conn)
        if holder.conn is conn:
            return Outcome(dpid)
        if dpid in self.contests:
            self._warn(dpid, now, 'switch %016x: %s claims it too while %s is being checked '
                       'against %s: refused' % (dpid, peer, self.contests[dpid].challenger.peer,
                                                holder.peer))
            return Outcome(dpid, close=conn)
        contest = self.contests[dpid] = Contest(dpid, holder, Holder(conn, peer),
                                                now + self.timeout)
        contest.told = self._warn(dpid, now, 'switch %016x: a second connection, from %s, '
                                  'claims it while %s holds it: %s keeps it if it answers '
                                  'an echo within %g s' % (dpid, peer, holder.peer,
                                                           holder.peer, self.timeout))
        return contest

    def answered(self, conn, xid: int, now: float) -> Outcome | None:
        """An echo reply: if it is the holder's answer in a contest, the newcomer goes."""
        contest = next((c for c in self.contests.values()
                        if c.holder.conn is conn and c.xid == xid), None)
        if contest is None:
            return None
        del self.contests[contest.dpid]
        LOG.log(logging.WARNING if contest.told else logging.DEBUG,
                'switch %016x: %s answered: it keeps the dpid, %s is refused',
                contest.dpid, contest.holder.peer, contest.challenger.peer)
        return Outcome(contest.dpid, close=contest.challenger.conn)

    def gone(self, conn) -> list[Outcome]:
        """A connection died: what it held is free (Outcome with neither), or goes to
        the newcomer that was contesting it."""
        outcomes = []
        for dpid, contest in list(self.contests.items()):
            if contest.challenger.conn is conn:
                del self.contests[dpid]
            elif contest.holder.conn is conn:
                outcomes.append(self._hand_over(contest, 'its connection closed'))
        for dpid, holder in list(self.holders.items()):
            if holder.conn is conn:
                del self.holders[dpid]
                outcomes.append(Outcome(dpid))
        return outcomes

    def tick(self, now: float) -> tuple[list[Outcome], float | None]:
        """Contests whose holder did not answer in time: the newcomer takes over. The
        outcomes, and when this is next due."""
        outcomes = [self._hand_over(c, 'no echo reply in %g s' % self.timeout)
                    for c in list(self.contests.values()) if c.deadline <= now]
        return outcomes, min((c.deadline for c in self.contests.values()), default=None)

    def _hand_over(self, contest: Contest, why: str) -> Outcome:
        del self.contests[contest.dpid]
        LOG.log(logging.WARNING if contest.told else logging.DEBUG,
                'switch %016x: %s is taken to be gone (%s): %s holds the dpid now',
                contest.dpid, contest.holder.peer, why, contest.challenger.peer)
        self.holders[contest.dpid] = contest.challenger
        return Outcome(contest.dpid, connect=contest.challenger.conn, close=contest.holder.conn)

    def _warn(self, dpid: int, now: float, message: str) -> bool:
        """Log a warning, unless one for this dpid went out less than WARN_EVERY ago
        (then at debug level, counted); whether it was logged."""
        at, quiet = self._warned.get(dpid, (None, 0))
        if at is not None and now - at < WARN_EVERY:
            self._warned[dpid] = (at, quiet + 1)
            LOG.debug(message)
            return False
        self._warned[dpid] = (now, 0)
        LOG.warning(message + ('' if not quiet else ' (%d more such claims in the last '
                                                    '%g s, not logged)' % (quiet, WARN_EVERY)))
        return True
