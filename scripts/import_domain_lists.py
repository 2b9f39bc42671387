#!/usr/bin/env python3
"""Service domains of known groups from v2fly's domain-list-community, as one generated data file.

    .venv/bin/python scripts/import_domain_lists.py SOURCE [--commit REV] [--output FILE]
        [--accessed YYYY-MM-DD] [--report FILE]

SOURCE is the list repository: a git directory (bare or not; read at ``--commit``, default HEAD) or a
checkout (its ``data/`` folder as it is on disk, when no ``--commit`` is given). The repository
(https://github.com/v2fly/domain-list-community, MIT licence) keeps one file per company or service
under ``data/``, e.g. ``data/microsoft``; a line is ``include:NAME [@attr] [@-attr]``, or a rule
``[domain:|full:|keyword:|regexp:]NAME [@attr]... [&list]...`` (``&list`` adds the rule to another
list too). Only facts carry over: which registrable domain a list names for which company.

What is kept, and what is left out (every count is printed):

- only the lists of :data:`LISTS`, each mapped by hand to an entity the curated registry defines;
  an included list is followed (with its ``@attr``/``@-attr`` filter) and its rules go to its own
  entity when it is mapped, else to the including list's entity; the lists of :data:`SKIPPED` (not
  that company's, reviewed by hand) and category-like lists (``category-*``, ``geolocation-*``,
  ``tld-*``, ``cn``, ``private``) are never followed, and any other list reached is reported;
- only ``domain:``, ``full:`` and bare rules, never ``keyword:`` or ``regexp:``; no rule tagged
  ``@ads`` (an ad or tracking host may be a third party's);
- only a rule whose name *is* its registrable domain (the project's public-suffix handling,
  :func:`derisk.enrich.domains.registrable_domain`, ICANN section): a rule for a single host such as
  ``full:bbc.akamaized.net`` or ``full:store.apple.com.edgekey.net`` names a tenant of someone
  else's domain, not the domain's owner; single labels (``microsoft``: a whole TLD) are left out;
- a domain that is itself a shared suffix of the public suffix list's private section
  (``github.io``, ``azurewebsites.net``) only for the group the list's comment names as its operator;
- no domain the curated registry already gives an entity (hand-written files win), no domain two
  lists give to different groups (each listed), nothing in :data:`EXCLUDED_DOMAINS`.

The output (default ``src/derisk/data/groups/domain-lists.json``) has one source per list file (the
file at the commit, ``verified: false``: shown as [U]) and a file-level ``listed_domains`` that adds
the domains to the entities of other files (:mod:`derisk.know.curated`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from derisk.enrich.domains import _snapshot, registrable_domain
from derisk.know.curated import _DOMAIN, check_groups, read_group_files

ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT: Final = ROOT / "src" / "derisk" / "data" / "groups" / "domain-lists.json"
REPOSITORY: Final = "https://github.com/v2fly/domain-list-community"
OUTPUT_NAME: Final = "domain-lists.json"

#: The curated entity each list's domains belong to (the entity that holds the list's main domain in
#: the hand-written registry), one entity a line: ``entity-id: list list ...``. Reviewed by hand: each
#: list names one company's own services.
_TABLE: Final = """
microsoft-corp: microsoft azure bing microsoft-dev microsoft-pki msn onedrive xbox mojang
github-inc: github github-copilot npmjs
linkedin-corporation: linkedin
activision-blizzard: activision-blizzard activision blizzard
google-llc: google android blogspot dart firebase flutter golang google-deepmind google-gemini google-play
google-llc: google-registry google-scholar google-trust-services googlefcm kaggle opensourceinsights polymer v8
google-llc: youtube
apple-inc: apple apple-dev apple-intelligence apple-music apple-pki apple-podcasts apple-tvplus apple-update
apple-inc: icloud icloudprivaterelay itunes
amazon-com-inc: amazon kindle imdb primevideo
amazon-web-services: aws amazontrust
whole-foods-market: wholefoodsmarket
twitch-interactive: twitch
meta-platforms: meta facebook facebook-dev messenger oculus threads
instagram-llc: instagram
whatsapp-llc: whatsapp
alibaba-group-holding: alibaba aligames aliyun-drive amap eleme shuqi teambition uc umeng youku
alibaba-cloud-computing: alibabacloud aliyun
dingtalk: dingtalk
cainiao-network: cainiao
tencent-holdings: tencent tencent-dev tencent-games tencent-tme sogou yuewen qcloud discuz dnspod
riot-games: riot
beijing-baidu-netcom: baidu
iqiyi-inc: iqiyi
bytedance-inc: bytedance bytedance-ai-!cn doubao dola trae juejin fqnovel dongchedi
beijing-volcano-engine: douyin lark volcengine
tiktok-pte: tiktok
xiaomi-corporation: xiaomi xiaomi-ai xiaomi-iot
huawei-technologies: huawei huawei-dev
huawei-cloud: huaweicloud
netease-inc: netease
jd-com-inc: jd
kuaishou-technology: kuaishou acfun
meituan: meituan
pdd-holdings: pinduoduo
didi-global: didi
bilibili: bilibili bilibili-cdn bilibili-game bilibili2
sina-corporation: sina
trip-com-group: ctrip
qihoo-360: qihoo360
hikvision: hikvision
sz-dji: dji
zte: zte
hisense-group: hisense
haier-group: haier
lenovo-group: lenovo
china-mobile-ltd: chinamobile
china-telecom-corp-ltd: chinatelecom ctyun
china-unicom-group: chinaunicom
ucloud-shanghai: ucloud
wangsu: wangsu
yandex-mkpao: yandex kinopoisk
vk-mkpao: vk ok mailru mailru-group dzen
kaspersky-lab-ao: kaspersky
rostelecom-pjsc: rostelecom
megafon-pjsc: megafon
mts-pjsc: mts-ru
selectel: selectel
cloudflare: cloudflare cloudflare-ipfs
akamai-technologies: akamai
fastly-inc: fastly
stackpath: stackpath
digitalocean-llc: digitalocean
hetzner-online: hetzner
the-constant-company: vultr
datacamp-limited: cdn77
hurricane-electric: hurricaneelectric
zscaler-inc: zscaler
isrg: letsencrypt
digicert: digicert
sectigo: sectigo
globalsign: globalsign
entrust: entrust
identrust: identrust
swisssign: swisssign
trustasia: trustasia
wisekey: wisekey
buypass: buypass
actalis: actalis
ssl-com: sslcom
verisign: verisign verisign-pki
oracle-corporation: oracle java addthis
ibm-corporation: ibm hashicorp
red-hat: redhat
adobe-inc: adobe adobe-activation typekit
cisco-systems: cisco
cisco-webex: webex
broadcom-inc: vmware broadcom
salesforce-inc: salesforce slack quip
atlassian: atlassian trello
twilio: twilio segment
nvidia-corporation: nvidia
qualcomm: qualcomm
hp-inc: hp
dell-technologies: dell
intel: intel
samsung-electronics: samsung
sony-group: sony playstation sonypictures
nintendo: nintendo
canon-inc: canon
panasonic-holdings: panasonic
x-corp: x twitter
xai-corp: xai
netflix-inc: netflix
spotify-technology: spotify
dropbox-inc: dropbox
zoom-communications: zoom
roblox-corporation: roblox
reddit-inc: reddit
ubisoft-entertainment: ubisoft
docker-inc: docker
gitlab-inc: gitlab
paypal-inc: paypal
shopify-inc: shopify
snap-inc: snap
pinterest-inc: pinterest
yahoo-inc: yahoo
wix-com: wix
automattic-inc: gravatar tumblr
godaddy-com-llc: godaddy
discord-inc: discord
signal-technology-foundation: signal
ziff-davis: ookla-speedtest speedtest
proton-ag: protonmail
tor-project: tor torproject
mozilla-corporation: mozilla firefox
wikimedia-foundation: wikimedia
psf: python
linux-foundation: thelinuxfoundation kubernetes
openstreetmap-foundation: openstreetmap
internet-archive: internet-archive
canonical: canonical ubuntu launchpad snapcraft
kakao-corp: kakao
naver-corp: naver
ly-corporation: line
rakuten-group: rakuten
viber-media: viber
walt-disney-company: disney abc bamtech marvel nationalgeographic starplus
espn-inc: espn
hulu-llc: hulu
warner-bros-discovery: hbo discoveryplus wbgames
nbcuniversal: nbcuniversal
sky-group: sky
bbc: bbc
new-york-times-company: nytimes
dow-jones: dowjones wsj barrons
news-corp: newscorp
booking-com-bv: booking
deutsche-telekom: telekom
verizon-communications: verizon
"""

#: List name -> entity id (:data:`_TABLE`).
LISTS: Final[dict[str, str]] = {
    name: entity.strip()
    for entity, _, names in (line.partition(":") for line in _TABLE.strip().splitlines())
    for name in names.split()
}

#: Lists an included list of :data:`LISTS` names that are not that company's (reviewed by hand).
SKIPPED: Final[dict[str, str]] = {
    "fastlane": "fastlane moved from Google to the Mobile Native Foundation (2021)",
    "hotstar": "JioStar (Reliance-controlled joint venture since 2024), not Disney",
    "zuoyebang": "Zuoyebang is an independent company spun off from Baidu",
    "ddmaicai": "Dingdong Maicai is an independent listed company, not Meituan",
    "starworld": "Qiku and related brands: joint ventures, not plainly Qihoo 360's",
    "cloudflare-cn": "Cloudflare's China network is operated with a Chinese partner",
    "aws-cn": "AWS China regions are operated by Sinnet and NWCD, not Amazon",
    "flickr": "Flickr belongs to SmugMug since 2018, not Yahoo",
    "ximalaya": "Ximalaya is an independent company (Tencent is an investor)",
    "asobo": "Asobo Studio is an independent French studio (Microsoft's partner)",
    "amp": "the AMP cache (cdn.ampproject.org) is run by Google, the project by OpenJS",
    "attwatchtv": "DirecTV brands, separated from AT&T",
    "linux": "linux.org is a privately run site, not the Linux Foundation's",
    "cybertrust": "Cybertrust Japan is a separate company, not DigiCert",
    "beats": "mostly shop names transferred from counterfeiters, not service domains",
}

#: Names of a mapped list that another company operates, by list (reviewed by hand).
EXCLUDED_IN_LIST: Final[dict[str, tuple[str, str]]] = {
    "azure": (r"\.cn$|^21v", "Azure in China is operated by 21Vianet"),
    "microsoft": (
        r"^(onmschina|sharepoint|microsoftonline|office365|outlook)\.cn$",
        "Office 365 in China is operated by 21Vianet",
    ),
    "nintendo": (
        r"pokemon|pokedex|^(dialga|giratina|kyurem)\.com$",
        "The Pokemon Company is not controlled by Nintendo (a third of its shares)",
    ),
    "mailru-group": (
        r"^(my\.games|dev-my\.games|prod-my\.games|pixonic\.com|it-territory\.com|boosty\.to|"
        r"donationalerts\.com|memealerts\.com|(o-)?uchi(lk)?\.ru|yclients\.com|algoritmika\.org|"
        r"tetrika-school\.ru|umschool\.net|yaklass\.ru|telega\.(info|me)|dahl(messenger)?\.(su|com)|"
        r"esforce\.(com|ru)|cybersport\.ru|epicevents\.gg|lovina\.app|sayeasy\.eu|bargipsy\.com|"
        r"armgs\.team|mytopf\.com|summerstage\.ru|movika\.com|keyboardmen\.com|knightspeak\.com)$",
        "sold by VK (MY.GAMES, Boosty) or a minority stake or holder not plainly VK",
    ),
}


def _names(text: str) -> list[str]:
    return text.split()


#: Domains a mapped list names that another company controls (reviewed by hand).
EXCLUDED_DOMAINS: Final[dict[str, str]] = {
    **dict.fromkeys(
        _names("oath.cloud oath.com ouroath.com verizonmedia.com verizondigitalmedia.com"),
        "Verizon Media became Yahoo (Apollo Global Management) in 2021",
    ),
    "uplynk.com": "Uplynk left Verizon with Verizon Digital Media Services (Edgio)",
    **dict.fromkeys(
        _names("linefriends.com linefriends.com.tw"), "LINE Friends became IPX, a separate company"
    ),
    **dict.fromkeys(
        _names(
            "altera.co.jp altera.com alteraforum.com buyaltera.com niosii.com niosii.net enpirion.com easic.com"
        ),
        "Altera: majority sold by Intel to Silver Lake (2025)",
    ),
    **dict.fromkeys(_names("pc.com chips.com"), "generic names whose holder the list does not show"),
    "tokyodisneyresort.jp": "Tokyo Disney Resort is owned by Oriental Land Co. (licensee)",
    "hongkongdisneyland.com": "Hong Kong Disneyland: majority held by the Hong Kong government",
    "shanghaidisneyresort.com": "Shanghai Disney Resort: majority held by Shanghai Shendi Group",
    "moviesanywhere.com": "Movies Anywhere: a studios' joint service, not only Disney's",
    **dict.fromkeys(
        _names(
            "8008206616.com getprintersupports.com printersetupsupport.com i-123-hp.com 123hplaserjet.com"
        ),
        "printer-support names that may be third parties' (not plainly HP's)",
    ),
    "philanthropy.xin": "the holder is not plainly Alibaba",
    **dict.fromkeys(_names("atos.net myatos.net certificat2.com"), "Atos and others' names, not Entrust's"),
    # doubtful in the hand review of a random sample (2026-12-07)
    **dict.fromkeys(
        _names("applecentar.co.rs applecentar.rs"), "an Apple reseller's name, not plainly Apple's"
    ),
    **dict.fromkeys(
        _names("nubia.cn nubia.com redmagic.com"), "Nubia: ZTE's stake is not plainly a controlling one"
    ),
    **dict.fromkeys(
        _names(
            "lenovoimage.cn lenovoimage.com lenovoprinter.com lenovoprinter.com.cn lenovoprinter.net "
            "thinkprinter.cn thinkprinter.com.cn thinkprinter.net"
        ),
        "Lenovo-branded printers are a licensee's (Lenovo Image), not plainly Lenovo's",
    ),
    "cpedge.com": "the holder is not plainly VMware (Broadcom)",
    **dict.fromkeys(
        _names("hpprinterdrivers.com hpprinterinstalls.com"), "printer-support names, not plainly HP's"
    ),
}

#: Domains a mapped list names that belong to another curated entity (reviewed by hand).
REASSIGNED: Final[dict[str, str]] = dict.fromkeys(
    _names(
        "alipay-eco.com alipay.cn alipay.com.cn alipaydns.com alipaylog.com alipaymo.com antfortune.com "
        "antgroup-inc.cn"
    ),
    "ant-group",  # Ant Group's (Alipay), which Alibaba does not control
)

_CATEGORY: Final = re.compile(r"^(category-|geolocation-|tld-)|^(cn|private|geolocation-cn)$")
_RULE_TYPES: Final = ("domain", "full", "keyword", "regexp")


@dataclass(frozen=True)
class Rule:
    """One domain rule of a list file."""

    kind: str  # domain, full, keyword, regexp
    value: str
    attrs: frozenset[str]
    file: str  # the list file the rule is written in


@dataclass(frozen=True)
class Include:
    name: str
    want: frozenset[str]  # @attr: only rules with each
    drop: frozenset[str]  # @-attr: only rules without any


@dataclass
class ListFile:
    rules: list[Rule]
    includes: list[Include]


class ImportError_(Exception):
    """The source cannot be read (the message says which and why)."""


def parse_list(name: str, text: str) -> tuple[ListFile, dict[str, list[Rule]]]:
    """One list file: its own rules and includes, and the rules it affiliates to other lists."""
    parsed = ListFile([], [])
    affiliated: dict[str, list[Rule]] = defaultdict(list)
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        head, *rest = line.split()
        if head.startswith("include:"):
            parsed.includes.append(
                Include(
                    head.removeprefix("include:").strip(),
                    frozenset(t[1:] for t in rest if t.startswith("@") and not t.startswith("@-")),
                    frozenset(t[2:] for t in rest if t.startswith("@-")),
                )
            )
            continue
        kind, value = "domain", head
        prefix, colon, tail = head.partition(":")
        if colon and prefix in _RULE_TYPES:
            kind, value = prefix, tail
        rule = Rule(kind, value.lower(), frozenset(t[1:] for t in rest if t.startswith("@")), name)
        parsed.rules.append(rule)
        for target in (t[1:] for t in rest if t.startswith("&")):
            affiliated[target].append(rule)
    return parsed, affiliated


def read_lists(source: Path, commit: str | None) -> tuple[dict[str, str], str | None]:
    """The text of every list file (name -> text) and the commit read (None: a checkout as it is)."""
    if commit is None and (source / "data").is_dir():
        files = sorted(p for p in (source / "data").iterdir() if p.is_file())
        return {p.name: p.read_text(encoding="utf-8") for p in files}, None
    git = ["git", f"--git-dir={_git_dir(source)}"]
    try:
        rev = _run([*git, "rev-parse", "--verify", f"{commit or 'HEAD'}^{{commit}}"]).strip()
        names = _run([*git, "ls-tree", "--name-only", rev, "data/"]).split("\n")
        texts: dict[str, str] = {}
        for path in filter(None, names):
            texts[path.removeprefix("data/")] = _run([*git, "show", f"{rev}:{path}"])
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ImportError_(f"{source}: not a readable list repository at {commit or 'HEAD'}: {exc}") from None
    return texts, rev


def _git_dir(source: Path) -> Path:
    return source / ".git" if (source / ".git").exists() else source


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, encoding="utf-8").stdout


def private_suffixes() -> dict[str, str]:
    """The private section of the public suffix list tldextract bundles: suffix -> the operator's
    comment line (``// GitHub, Inc.``)."""
    _, _, private = _snapshot().partition("// ===BEGIN PRIVATE DOMAINS===")
    out: dict[str, str] = {}
    owner = ""
    for line in private.splitlines():
        text = line.strip()
        if not text:
            owner = ""
        elif text.startswith("//"):
            if not owner and not text.startswith("// Submitted by") and "===" not in text:
                owner = text.removeprefix("//").strip()
        else:
            out[text.lstrip("*.!")] = owner
    return out


@dataclass
class Result:
    """Kept domains (entity id -> list file -> domains) and what was left out, with reasons."""

    kept: dict[str, dict[str, list[str]]]
    counts: dict[str, int]
    conflicts: list[str]
    curated_elsewhere: list[str]
    unreviewed: list[str]


def resolve(
    texts: dict[str, str],
    lists: dict[str, str],
    entities: dict[str, tuple[str, str, tuple[str, ...]]],
    claimed: dict[str, str],
    excluded: dict[str, str] | None = None,
) -> Result:
    """The domains to add. ``entities``: id -> (name, group, aliases) of the curated registry;
    ``claimed``: domain -> entity id of every domain the curated registry already gives."""
    excluded = EXCLUDED_DOMAINS if excluded is None else excluded
    parsed: dict[str, ListFile] = {}
    affiliated: dict[str, list[Rule]] = defaultdict(list)
    for name, text in texts.items():
        parsed[name], more = parse_list(name, text)
        for target, rules in more.items():
            affiliated[target].extend(rules)
    counts: dict[str, int] = defaultdict(int)
    unreviewed: set[str] = set()
    # (entity, list file) per rule reached, walking each mapped list's includes.
    reached: list[tuple[str, Rule]] = []
    for root in sorted(lists):
        if root not in parsed and root not in affiliated:
            counts["mapped list not in the repository"] += 1
            continue
        stack: list[tuple[str, frozenset[str], frozenset[str], tuple[str, ...]]] = [
            (root, frozenset(), frozenset(), ())
        ]
        while stack:
            name, want, drop, path = stack.pop()
            if name in path:
                continue
            own = [*(parsed[name].rules if name in parsed else []), *affiliated.get(name, [])]
            for rule in own:
                if want <= rule.attrs and not (drop & rule.attrs):
                    reached.append((lists[root], rule))
            for inc in parsed[name].includes if name in parsed else []:
                if inc.name in lists or inc.name in SKIPPED or _CATEGORY.search(inc.name):
                    continue  # a mapped list is walked as its own root
                if name == root or name not in lists:
                    unreviewed.add(f"{inc.name} (included by {name}, counted as {lists[root]})")
                stack.append((inc.name, want | inc.want, drop | inc.drop, (*path, name)))
    privates = private_suffixes()
    owners: dict[str, set[str]] = defaultdict(set)  # domain -> entity ids
    origin: dict[tuple[str, str], str] = {}  # (entity, domain) -> list file
    for entity, rule in reached:
        reason = _left_out(rule, entity, entities, privates, excluded)
        if reason:
            counts[reason] += 1
            continue
        entity = REASSIGNED.get(rule.value, entity)
        owners[rule.value].add(entity)
        origin.setdefault((entity, rule.value), rule.file)
    kept: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    conflicts: list[str] = []
    elsewhere: list[str] = []
    for domain in sorted(owners):
        ids = sorted(owners[domain])
        groups = {entities[i][1] for i in ids}
        if domain in claimed:
            curated = claimed[domain]
            if entities[curated][1] not in groups:
                elsewhere.append(f"{domain}: curated {curated}, lists say {', '.join(ids)}")
            counts["already in the curated registry"] += 1
            continue
        if len(groups) > 1:
            conflicts.append(f"{domain}: {', '.join(f'{i} ({origin[(i, domain)]})' for i in ids)}")
            counts["claimed by lists of different groups"] += 1
            continue
        entity = ids[0]  # one group: the first entity by id
        kept[entity][origin[(entity, domain)]].append(domain)
        counts["kept"] += 1
    return Result(
        {e: {f: sorted(d) for f, d in sorted(v.items())} for e, v in sorted(kept.items())},
        dict(sorted(counts.items())),
        conflicts,
        elsewhere,
        sorted(unreviewed),
    )


def _left_out(
    rule: Rule,
    entity: str,
    entities: dict[str, tuple[str, str, tuple[str, ...]]],
    privates: dict[str, str],
    excluded: dict[str, str],
) -> str | None:
    """Why a rule is not kept (None: kept)."""
    if rule.kind in ("keyword", "regexp"):
        return f"{rule.kind} rule"
    if "ads" in rule.attrs:
        return "tagged @ads"
    domain = registrable_domain(rule.value)
    if domain is None:
        return "no registrable domain (a TLD, a public suffix or not a name)"
    if domain != rule.value:
        return "a host under a registrable domain, not the domain itself"
    if not _DOMAIN.match(domain):
        return "a name the registry's format refuses (a punycode top-level domain)"
    if rule.value in excluded:
        return "excluded by hand"
    pattern = EXCLUDED_IN_LIST.get(rule.file)
    if pattern is not None and re.search(pattern[0], rule.value):
        return "excluded by hand"
    if rule.value in privates:
        name, group, aliases = entities[entity]
        words = {w for n in (name, group, *aliases) for w in re.findall(r"[a-z0-9]{3,}", n.lower())}
        operator = set(re.findall(r"[a-z0-9]{3,}", privates[rule.value].lower()))
        if not words & operator - {"inc", "ltd", "llc", "corporation", "the", "and", "gmbh", "limited"}:
            return "a shared suffix (public suffix list, private section) of another operator"
    return None


def curated_registry() -> tuple[dict[str, tuple[str, str, tuple[str, ...]]], dict[str, str]]:
    """Entities (id -> name, group, aliases) and claimed domains (domain -> entity id) of every
    shipped group file except this script's own output."""
    files = {k: v for k, v in read_group_files().items() if k != OUTPUT_NAME}
    found, _, problems = check_groups(files)
    if problems:
        raise ImportError_(f"the curated registry has problems: {problems[0].where}: {problems[0].what}")
    entities = {e.id: (e.name, e.group or e.name, e.aliases) for e in found}
    claimed = {d: e.id for e in found for d in e.domains}
    return entities, claimed


def document(result: Result, commit: str, accessed: str) -> dict[str, object]:
    """The generated group file."""
    files = sorted({f for per in result.kept.values() for f in per})
    sources = {
        f"v2fly-{name}": {
            "url": f"{REPOSITORY}/blob/{commit}/data/{name}",
            "says": f"v2fly domain-list-community's list '{name}' names these domains as this company's "
            "services (community-maintained, MIT licence)",
            "accessed": accessed,
            "verified": False,
            "publisher": "v2fly domain-list-community",
        }
        for name in files
    }
    listed = {
        entity: {f"v2fly-{name}": domains for name, domains in per.items()}
        for entity, per in result.kept.items()
    }
    return {
        "group": "Service domains of curated groups (v2fly domain-list-community)",
        "sources": sources,
        "entities": [],
        "listed_domains": listed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the list repository: a git directory or a checkout")
    parser.add_argument("--commit", default=None, help="the commit to read (default HEAD)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--accessed", default=dt.datetime.now(dt.UTC).date().isoformat())
    parser.add_argument("--report", type=Path, default=None, help="write the full report (JSON) here")
    args = parser.parse_args(argv)
    try:
        texts, commit = read_lists(args.source, args.commit)
        if commit is None:
            raise ImportError_(f"{args.source}: a checkout needs --commit (the source must name a commit)")
        entities, claimed = curated_registry()
    except ImportError_ as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    missing = sorted({e for e in [*LISTS.values(), *REASSIGNED.values()] if e not in entities})
    if missing:
        print(f"error: LISTS names entities the registry lacks: {', '.join(missing)}", file=sys.stderr)
        return 2
    result = resolve(texts, LISTS, entities, claimed)
    doc = document(result, commit, args.accessed)
    args.output.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(texts)} lists at {commit}; {len(LISTS)} mapped to {len(set(LISTS.values()))} entities")
    for reason, count in result.counts.items():
        print(f"  {count:6d}  {reason}")
    for title, items in (
        ("conflicts (left out)", result.conflicts),
        ("curated registry gives another group (left out)", result.curated_elsewhere),
        ("included lists followed without their own mapping", result.unreviewed),
    ):
        print(f"{title}: {len(items)}")
        for item in items:
            print(f"  {item}")
    if args.report is not None:
        report = {
            "commit": commit,
            "counts": result.counts,
            "conflicts": result.conflicts,
            "curated_elsewhere": result.curated_elsewhere,
            "unreviewed": result.unreviewed,
        }
        args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
