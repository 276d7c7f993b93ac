"""The `[probe]` option group and the plain settings the core runs on.

Set options in a file passed with `ryu-manager --config-file probe.conf`:

    [probe]
    dye = 111
    catch_priority = 65535
"""
from dataclasses import dataclass

from ryu import cfg

GROUP = 'probe'

OPTS = [
    cfg.IntOpt('dye', default=111, min=0, max=0xffff,
               help='ICMP identifier of every probe echo request (the "dye").'),
    cfg.IntOpt('catch_priority', default=65535, min=1, max=65535,
               help='Priority of the table-0 flow that copies dyed replies to us.'),
    cfg.IntOpt('guard_reg', default=15, min=0, max=15,
               help='NXM register (regN) the catch flow sets to 1 before it resubmits '
                    'the reply to table 0, so the reply does not match it twice. '
                    'Pick one your pipeline does not read before writing it.'),
    cfg.IntOpt('controller_id', default=0x7270, min=1, max=0xffff,
               help='OVS controller id of our connection. Catch flows send PacketIns '
                    'to this id only, so other controllers of the bridge never see '
                    'them. Also the low bits of our flow cookie.'),
    cfg.FloatOpt('catch_settle', default=0.002, min=0, max=1,
                 help='Seconds to wait after the switch confirms a new catch flow '
                      'before injecting, and the first retransmission delay of a first '
                      'echo while the flow has caught nothing: the datapath keeps using '
                      'cached flows for a moment after a FlowMod (see README).'),
    cfg.FloatOpt('catch_linger', default=0.0, min=0, max=3600,
                 help='Seconds an idle catch flow stays before it is deleted. 0: it goes '
                      'when its last probe ends. More: back-to-back probes from one '
                      'source reuse a live flow, with no settle time and fewer FlowMods.'),
    cfg.FloatOpt('max_echo_rate', default=5000, min=1,
                 help='Echo requests per second the app injects, over all switches '
                      '(bursts of 10 ms worth): a sweep of thousands of pairs is paced, '
                      'not fired at the switches at once.'),
    cfg.IntOpt('max_active_probes', default=1000, min=1,
               help='Probes that may run at once; more get 429.'),
    cfg.IntOpt('max_count', default=1000, min=1, max=65535,
               help='Largest echo count of one probe.'),
    cfg.FloatOpt('max_timeout', default=30.0, min=0.001,
                 help='Largest per-echo timeout and interval, in seconds.'),
    cfg.IntOpt('max_results', default=10000, min=1,
               help='Finished probes kept for GET; the oldest are dropped first.'),
]

cfg.CONF.register_opts(OPTS, group=GROUP)


def _default(name: str):
    return next(opt.default for opt in OPTS if opt.dest == name)


@dataclass(frozen=True)
class Settings:
    """What the core needs to know; built from the config, or by hand in tests.
    Every default is the option's own, declared once in OPTS."""
    dye: int = _default('dye')
    catch_priority: int = _default('catch_priority')
    guard_reg: int = _default('guard_reg')
    controller_id: int = _default('controller_id')
    catch_settle: float = _default('catch_settle')
    catch_linger: float = _default('catch_linger')
    max_echo_rate: float = _default('max_echo_rate')
    max_active_probes: int = _default('max_active_probes')
    max_count: int = _default('max_count')
    max_timeout: float = _default('max_timeout')
    max_results: int = _default('max_results')

    @property
    def cookie(self) -> int:
        """Cookie of every flow we install: a fixed 'ryup' prefix plus our controller id."""
        return 0x72797570_00000000 | self.controller_id

    @classmethod
    def from_conf(cls, conf=cfg.CONF) -> 'Settings':
        group = conf[GROUP]
        return cls(**{opt.dest: group[opt.dest] for opt in OPTS})
