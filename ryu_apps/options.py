"""The `[probe]` option group and the plain settings the core runs on.

Set options in a file passed with `ryu-manager --config-file probe.conf`:

    [probe]
    dye = 111
    mark = 59
"""
from dataclasses import dataclass

from ryu import cfg

GROUP = 'probe'

OPTS = [
    cfg.IntOpt('dye', default=111, min=0, max=0xffff,
               help='ICMP identifier of every probe echo request (the "dye").'),
    cfg.IntOpt('mark', default=None, min=1, max=63,
               help='DSCP value of every probe echo request; Linux echoes it in the '
                    'reply, and only marked replies match our flows. Default: one of '
                    'the 16 DSCP values RFC 2474 keeps for local use (xxxx11), picked '
                    'by controller_id, so instances with different ids never share a '
                    'flow.'),
    cfg.IntOpt('controller_id', default=0x7270, min=1, max=0xffff,
               help='OVS controller id of our connection. Catch flows send PacketIns '
                    'to this id only, so other controllers of the bridge never see '
                    'them. Also the low bits of our flow cookie.'),
    cfg.FloatOpt('catch_settle', default=0.01, min=0, max=1,
                 help='Seconds to wait after the switch confirms a new catch flow '
                      'before injecting, and the first retransmission delay of a first '
                      'echo while the flow has caught nothing: the datapath keeps using '
                      'cached flows for a moment after a FlowMod (see README).'),
    cfg.FloatOpt('catch_linger', default=10.0, min=0, max=3600,
                 help='Seconds the catch flows of an idle source stay before they are '
                      'deleted. They match marked packets only. 0: they go when the '
                      "source's last probe ends. More: back-to-back probes from one "
                      'source reuse live flows, with no settle time and fewer FlowMods.'),
    cfg.FloatOpt('resync_interval', default=1.0, min=0.05, max=3600,
                 help='Seconds between re-reads of a bridge\'s flow table while catch '
                      'flows live on it: they follow the flows that deliver to the '
                      'source port when another controller changes them.'),
    cfg.IntOpt('packet_in_rate', default=5000, min=1,
               help='PacketIns per second that our flows may send from one bridge (an '
                    'OpenFlow meter, in the switch): a tenant that happens to use our '
                    'mark cannot flood the controller.'),
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
    cfg.StrOpt('monitors_file', default=None,
               help='JSON file that keeps the monitors (POST /probe/monitors) across '
                    'restarts: written atomically on every change, read at start. Unset: '
                    'monitors live only as long as the process.'),
    # Access to the REST API (access.py)
    cfg.StrOpt('api_token_file', default=None,
               help='File of tokens (a line: TOKEN, or NAME TOKEN) that may use the whole '
                    'REST API, as "Authorization: Bearer TOKEN"; others get 401. Unset: '
                    'no authentication (keep the API on 127.0.0.1 then).'),
    cfg.StrOpt('api_readonly_token_file', default=None,
               help='File of tokens that may only read (GET): they cannot start probes or '
                    'change monitors (403). Needs api_token_file.'),
    cfg.BoolOpt('metrics_without_token', default=False,
                help='Serve GET /metrics without a token (Prometheus scrapes without one '
                     'by default).'),
    cfg.IntOpt('max_body_bytes', default=4 << 20, min=1024,
               help='Largest request body; larger ones get 413 unread.'),
    cfg.FloatOpt('api_rate', default=0.0, min=0,
                 help='REST requests per second per client address (bursts of api_burst); '
                      'past it, 429 with Retry-After. 0: no limit.'),
    cfg.IntOpt('api_burst', default=20, min=1,
               help='Requests a client may make at once before api_rate applies.'),
    cfg.StrOpt('api_cert', default=None,
               help='PEM certificate (chain) for serving the REST API over TLS (with '
                    'api_key): then it speaks HTTPS only, on --wsapi-host/--wsapi-port.'),
    cfg.StrOpt('api_key', default=None, help='The PEM private key of api_cert.'),
]

cfg.CONF.register_opts(OPTS, group=GROUP)


def _default(name: str):
    return next(opt.default for opt in OPTS if opt.dest == name)


@dataclass(frozen=True)
class Settings:
    """What the core needs to know; built from the config, or by hand in tests.
    Every default is the option's own, declared once in OPTS."""
    dye: int = _default('dye')
    mark: int | None = _default('mark')
    controller_id: int = _default('controller_id')
    catch_settle: float = _default('catch_settle')
    catch_linger: float = _default('catch_linger')
    resync_interval: float = _default('resync_interval')
    packet_in_rate: int = _default('packet_in_rate')
    max_echo_rate: float = _default('max_echo_rate')
    max_active_probes: int = _default('max_active_probes')
    max_count: int = _default('max_count')
    max_timeout: float = _default('max_timeout')
    max_results: int = _default('max_results')
    monitors_file: str | None = _default('monitors_file')
    api_token_file: str | None = _default('api_token_file')
    api_readonly_token_file: str | None = _default('api_readonly_token_file')
    metrics_without_token: bool = _default('metrics_without_token')
    max_body_bytes: int = _default('max_body_bytes')
    api_rate: float = _default('api_rate')
    api_burst: int = _default('api_burst')
    api_cert: str | None = _default('api_cert')
    api_key: str | None = _default('api_key')

    @property
    def dscp(self) -> int:
        """The mark: explicit, or a local-use DSCP value (xxxx11) picked by controller_id."""
        return self.mark if self.mark is not None else (self.controller_id % 16) << 2 | 3

    @property
    def trace_dscp(self) -> int:
        """The trace mark: another local-use DSCP value, eight away from the mark's."""
        return ((self.dscp >> 2) + 8) % 16 << 2 | 3

    @property
    def meter_id(self) -> int:
        """The OpenFlow meter that caps our PacketIns (ours alone: it is our controller id)."""
        return self.controller_id

    @property
    def cookie(self) -> int:
        """Cookie of every flow we install: a fixed 'ryup' prefix plus our controller id."""
        return 0x72797570_00000000 | self.controller_id

    @classmethod
    def from_conf(cls, conf=cfg.CONF) -> 'Settings':
        group = conf[GROUP]
        return cls(**{opt.dest: group[opt.dest] for opt in OPTS})
