"""The attribution scorer (scripts/eval_attribution.py) on a real nDPI capture, offline.

The capture is nDPI's facebook.pcap (tests/fixtures/eval/ndpi-facebook.pcap, origin in
tests/fixtures/README.md); the IP data is the project's ip-location-db fixture. derisk analyze runs for
real (a subprocess, as the script runs it), and the scorer's counts are checked against judgements
written here: one correct, one deliberately wrong, one address absent from the capture, one not judged.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "tests" / "fixtures" / "eval" / "ndpi-facebook.pcap"
TRUTH = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth.yaml"
HELDOUT = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout.yaml"
HELDOUT2 = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout2.yaml"
HELDOUT3 = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout3.yaml"
HELDOUT4 = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout4.yaml"
HELDOUT5 = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout5.yaml"
HELDOUT6 = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout6.yaml"
HELDOUT7 = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout7.yaml"
HELDOUT8 = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout8.yaml"
HELDOUT9 = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout9.yaml"
HELDOUT10 = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth-heldout10.yaml"
#: The repositories (and commits) the shipped truth files take their captures from.
REPOSITORIES = {
    "https://github.com/ntop/nDPI",
    "https://github.com/zeek/zeek",
    "https://github.com/chrissanders/packets",
    "https://github.com/OISF/suricata-verify",
    "https://github.com/arkime/arkime",
    "https://github.com/secdev/scapy",
    "https://github.com/the-tcpdump-group/tcpdump",
    "https://github.com/FoxIO-LLC/ja4",
    "https://github.com/seladb/PcapPlusPlus",
    "https://github.com/cisco/mercury",
    "https://github.com/CESNET/ipfixprobe",
    "https://github.com/cisco/joy",
    "https://github.com/kbandla/dpkt",
    "https://github.com/NotYuSheng/TracePcap",
    "https://github.com/appneta/tcpreplay",
    "https://github.com/brimdata/brimcap",
    "https://github.com/corelight/zeek-agenttesla-detector",
    "https://github.com/cuckoosandbox/cuckoo",
    "https://github.com/dotpcap/packetnet",
    "https://github.com/emanuele-f/PCAPdroid",
    "https://github.com/markofu/pcaps",
    "https://github.com/mike01/pypacker",
    "https://github.com/nfstream/nfstream",
    "https://github.com/packetfu/packetfu",
    "https://github.com/rusticata/pcap-parser",
    "https://github.com/sbousseaden/PCAP-ATTACK",
    "https://github.com/simsong/tcpflow",
    "https://github.com/stratosphereips/StratosphereLinuxIPS",
    "https://github.com/ACandeias/IntrusionDetection",
    "https://github.com/AlexeyVasilev/PcapFlowLab",
    "https://github.com/SuperCowPowers/chains",
    "https://github.com/aucad/sensor-data",
    "https://github.com/corelight/zeek-quic",
    "https://github.com/elcabezzonn/Pcaps",
    "https://github.com/lwerdna/filesamples",
    "https://github.com/markfvl/Pcaphunt",
    "https://github.com/mmguero-dev/Malcolm-PCAP",
    "https://github.com/tj-oconnor/IoT-Dataset",
    "https://github.com/0xsrushti/Wireshark-Network-Traffic-Analysis",
    "https://github.com/1-basil/APKsherlock",
    "https://github.com/abhinav8377/Internship_Task_05",
    "https://github.com/adarbachar/sniffing-project",
    "https://github.com/Ahmed1337/Wireshark",
    "https://github.com/aktersabina122/OIBSIP_Cybersecurity_Task8",
    "https://github.com/AnjaliJayakanthan/network-traffic-analysis",
    "https://github.com/athul1810/WirePlot",
    "https://github.com/bishaltm567/OIBSIP",
    "https://github.com/chidurasucheer/OASIS-Cybersecurity-Internship",
    "https://github.com/Dadusingh98/Elevate-Labs-Cyber_Internship_Task_5",
    "https://github.com/DatTran789/CkPrograming",
    "https://github.com/Harishwar006/cyber-security-internship-task-5",
    "https://github.com/jo4dan/Network-Traffic-Packet-Analysis",
    "https://github.com/KarunaVashisht/CyberSecurityTask5",
    "https://github.com/KolaSailaja/SecuirtyAnalyst-Task8-OasisInfobyte",
    "https://github.com/KristovZander/Task5-Wireshark",
    "https://github.com/kumar13mustd/Traffic-Analysis-in-Wireshark",
    "https://github.com/Lakjaya-hub/Network-Monitoring-Capture-The-Generated-Network-Traffic-Using-TCPDUMP",
    "https://github.com/Madiba-Research/QuicMitm",
    "https://github.com/ManojMandal01/Capture_Network_Traffic_with_Wireshark",
    "https://github.com/nyxlayer01/Network-traffic-analysis-wireshark",
    "https://github.com/Rajesh-code-droid/Task8_Wireshark_Network_Traffic_Analysis",
    "https://github.com/RanDomGuY84/Task-8-Capture-Network-Traffic-with-Wireshark-OIBSIP",
    "https://github.com/Ritesh332/Task5",
    "https://github.com/Rushil0241/Internship-Task-5",
    "https://github.com/Sakshi-Maliye/Network-Analysis",
    "https://github.com/Sar-as902/Task-5-Network-Traffic-Analysis",
    "https://github.com/saroj34/Packet-capture-in-wireshark",
    "https://github.com/shivdutt28/Task5",
    "https://github.com/Blowofj/tp1-r-seaux",
    "https://github.com/delphi0127/generate-network-xmls-for-peach",
    "https://github.com/denisgolyanov/mudproject",
    "https://github.com/jmhIcoding/CMiddlebox",
    "https://github.com/kobe6672823/pcap_analysis",
    "https://github.com/luguifang/protocol-pcap",
    "https://github.com/peakrain/tcp_stream",
    "https://github.com/sashalarso/MSSIS-projetreseau",
    "https://github.com/starryhcy/traffic-monitoring-and-analyze",
    "https://github.com/TakashiImotoJapan/MGT202206",
    "https://github.com/WheelR00t/Tp2",
    "https://github.com/zsyang168/packets",
    "https://github.com/Shrushtikesur/Network-Traffic-Analysis",
    "https://github.com/Shruti29044/Network-Traffic-Analyzer",
    "https://github.com/Tasmia12/Task4-Capture-Network-Traffic-with-Wireshark",
    "https://github.com/Vikalp1234087/OIBSIP_CyberSecurity_Task2",
    "https://github.com/03-SQL-Comcave-DD/Wireshark-learning",
    "https://github.com/13usmanali/Computer-Networks-assignment-1",
    "https://github.com/aashishayanthakur/network",
    "https://github.com/allenvox/networks",
    "https://github.com/alselavrov-star/dz_8_py",
    "https://github.com/Choi-Jiwon-38/2022-ComputerNetwork",
    "https://github.com/eTac01/Wireshark-Traffic-Analysis",
    "https://github.com/FARIZRAFI/wireshark",
    "https://github.com/hanaluthfiah/Tugas-Pengantar-Telekomunikasi",
    "https://github.com/IamNejoo/Criptografia_tarea_1",
    "https://github.com/Jahnavipohar08/network-traffic-analysis-wireshark",
    "https://github.com/lei1738/kry",
    "https://github.com/Logards/TP-Reseaux",
    "https://github.com/Mikhalkevich-N/DZ_8",
    "https://github.com/nedonator/sbt-networks",
    "https://github.com/pmarcais/packet_trace",
    "https://github.com/PragguCodes/week-5",
    "https://github.com/quan13012004/DATN",
    "https://github.com/rajatgolechha3319/COL334-1",
    "https://github.com/Raphh1/B2-reseau",
    "https://github.com/rohithuor/WiresharkPacketAnalysis",
    "https://github.com/RoyhanJordy29/js-Wireshark-Pengantar_Telekomunikasi",
    "https://github.com/SaherMuhamed/network-geo-tracking",
    "https://github.com/skhae9/pengantar-telekomunikasi",
    "https://github.com/sm9614/pktsniffer",
    "https://github.com/SodiumChloride-byte/Wireshark-Packet-Analysis",
    "https://github.com/szaki33/PKS-Cvicenie04-HTTP",
    "https://github.com/tapia1013/urkle",
    "https://github.com/zbatter01/4240FinalProject",
    "https://github.com/AdamVII/tp-1",
    "https://github.com/AfsheenaMusthafa/packet-capture",
    "https://github.com/AleMore1111/TP-admin",
    "https://github.com/amalnathtk93-bit/task-5",
    "https://github.com/AugustoCiuffoletti/lab_traces",
    "https://github.com/Bluetheo/Tp",
    "https://github.com/Bouacida/Tp1",
    "https://github.com/BroccoliSnivy/Internship_Task_5",
    "https://github.com/eff4ctt/ynov",
    "https://github.com/EshaaSumesh/Elevate-Labs-Task-5",
    "https://github.com/Figuy/VictoriaB1",
    "https://github.com/Grupo-10-lab2-redes/Laboratorio-2",
    "https://github.com/habafatom/prmiertp",
    "https://github.com/IL2-RUS/NetWorks",
    "https://github.com/Jk-kor/tpreseau1",
    "https://github.com/jl16994/Computer-Networking---Wireshark-Lab-DNS",
    "https://github.com/kerik228337/xxx",
    "https://github.com/mark1234720/GIUNet",
    "https://github.com/Maryem125/pfe",
    "https://github.com/MaryShiko/Wireshark-network-Analysis",
    "https://github.com/navy356/CN",
    "https://github.com/Oviya003/COMPUTER-NETWORKS",
    "https://github.com/raphcvrt/tp-Reseau",
    "https://github.com/rizztoy/networking-assignment-5",
    "https://github.com/Sana1610/redes-lab-02",
    "https://github.com/ShoutingTable/C_Emanuel",
    "https://github.com/Slo-J42/Task-5",
    "https://github.com/spacelab-ccny-teaching/sse-lab-wireshark",
    "https://github.com/Titou-cyber/R-seau",
    "https://github.com/uliaxe/reseau-B2",
    "https://github.com/VishnuMatli/Task-5",
    "https://github.com/WaliMuhammadAhmad/Networking-Packet-Traces",
    "https://github.com/Akhilasamatham/wifi",
    "https://github.com/Amay0001/Elevate-Lab-internship-task5",
    "https://github.com/BasheerHusahm/Network",
    "https://github.com/bhavesh7reddy/IP-Address-Analyser",
    "https://github.com/danyGhassan/r-seauB2",
    "https://github.com/elh313/compnet",
    "https://github.com/g09s2665/interestingTraffic",
    "https://github.com/itblockz/DataCom",
    "https://github.com/jfrancososa/IG-UnderTheLens",
    "https://github.com/Konsta7/ReitittimenTietoturvakuvaus",
    "https://github.com/Krapulita/Informes",
    "https://github.com/leaf-0/netwok-log",
    "https://github.com/mardhekarpraful/CyberSecurity-Internship-Task5",
    "https://github.com/myqcxy/junior",
    "https://github.com/Om-Kumar-coder/Elevate_Labs_Task5",
    "https://github.com/ParthMatta-9921/Task-5",
    "https://github.com/Prachi-Sharnagat/NetworkTrafficAnalysis",
    "https://github.com/PriyaSKulkarni/Wireshark",
    "https://github.com/Rakesh-2k4/task-5-network-traffic",
    "https://github.com/RiverUp/networkTR",
    "https://github.com/sagythepigy/elevatelabs_task5",
    "https://github.com/saikowshik07/Computer-networks",
    "https://github.com/Saisrikanthbandaru/COMPUTER-NETWORKS-LAB",
    "https://github.com/sakthi3009/cyber-security-task",
    "https://github.com/Sanjuhm/packet_capture_task",
    "https://github.com/sayconesta/Wireshark_labs",
    "https://github.com/sineeshs/OIBSIP_cybersecurity_taskno8",
    "https://github.com/subhashinivellaturi/Network-Traffic",
    "https://github.com/syed-nooruddin-y/Capture-and-analysis",
    "https://github.com/Toxic12l/Wireshark-Packet-Analyser",
    "https://github.com/twothreetwofive/Android-X-Ray",
    "https://github.com/vims-141/CYBER-SECURITY-TASKS",
    "https://github.com/WayytWang/network-learn",
    "https://github.com/wenjie01/wireshark_labs",
    "https://github.com/YihengYe/ECE158A-HW1",
    "https://github.com/Zack2017io/Task5",
    "https://github.com/zumodeus/ELO322",
}
BLOB = "153d497a36e508c2a55b33dac4f3df76e2c58985"  # git rev-parse HEAD:tests/cfgs/default/pcap/facebook.pcap


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "eval_attribution", ROOT / "scripts" / "eval_attribution.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_attribution"] = module
    spec.loader.exec_module(module)
    return module


ev = _load()


def _judged(ip: str, names: list[str], controller: list[str], jurisdiction: str) -> dict[str, Any]:
    layer = "service" if names else "infrastructure"
    expected = {"controller": controller, "jurisdiction": jurisdiction}
    dest: dict[str, Any] = {"ip": ip, "server_names": names, "asn": 32934, "as_org": "Facebook, Inc."}
    dest["infrastructure"] = dict(expected)
    if names:
        dest["service"] = dict(expected)
    dest["expected"] = {"layer": layer, **expected}
    dest["judged"] = True
    return dest


def _truth() -> dict[str, Any]:
    right = _judged("31.13.86.36", ["www.facebook.com"], ["Meta Platforms"], "US")
    wrong = _judged("66.220.156.68", ["facebook.com"], ["Tencent"], "CN")  # deliberately wrong judgement
    absent = _judged("192.0.2.1", [], ["Meta Platforms"], "US")  # not in the capture
    skipped = {"ip": "31.13.86.36", "server_names": [], "judged": False}
    capture = {"file": CAPTURE.name, "blob": BLOB, "destinations": [right, wrong, absent, skipped]}
    return {"captures": [capture]}


def test_git_blob_id_is_gits() -> None:
    assert ev.git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert ev.git_blob_id(CAPTURE.read_bytes()) == BLOB


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (("Meta Platforms, Inc.", "US", "registry"), "right"),
        (("Meta Platforms, Inc.", "IE", "registry"), "wrong"),
        (("Akamai Technologies, Inc.", "US", "asn"), "wrong"),
        (("Facebook Ireland", "IE", "as-registration"), "unknown"),
        ((None, "US", "unknown"), "unknown"),
        (("Metaverse Ltd", "US", "registry"), "wrong"),
    ],
)
def test_classify(answer: tuple[str | None, str, str], outcome: str) -> None:
    expected = {"controller": ["Meta Platforms"], "jurisdiction": "US"}
    assert ev.classify(ev.Answer(*answer), expected) == outcome


def test_an_answer_is_right_under_any_of_its_entitys_registry_names() -> None:
    names = ev.registry_names()
    cerist = {"controller": ["CERIST"], "jurisdiction": "DZ"}
    full = "Centre de Recherche sur l'Information Scientifique et Technique"
    entity = next(i for i, known in names.items() if known[0] == full)
    assert "CERIST" in names[entity]  # the registry's alias, not a list written here
    assert ev.classify(ev.Answer(full, "DZ", "asn"), cerist) == "wrong"  # by display name alone
    assert ev.classify(ev.Answer(full, "DZ", "asn", names[entity]), cerist) == "right"
    assert ev.classify(ev.Answer(full, "FR", "asn", names[entity]), cerist) == "wrong"  # jurisdiction still
    dest = {
        "controller": full, "jurisdiction": "DZ", "jurisdiction_basis": "registry",
        "infrastructure": {"controller": full, "controller_id": entity, "jurisdiction": "DZ", "basis": "asn"},
        "service": {"controller": None, "controller_id": None},
    }  # fmt: skip
    assert ev.classify(ev._combined(dest, names), cerist) == "right"
    assert ev.classify(ev._combined(dest, {}), cerist) == "wrong"


def test_scores_a_real_capture(tmp_path: Path, ipdata_dir: Path) -> None:
    captures = tmp_path / "captures"
    captures.mkdir()
    shutil.copy(CAPTURE, captures / CAPTURE.name)
    score, problems = ev.evaluate(captures, _truth(), tmp_path / "work", ipdata_dir)
    assert problems == []
    assert score.captures == 1
    assert score.not_judged == 1
    combined = score.outcomes["combined"]
    assert (combined["right"], combined["wrong"], combined["unknown"]) == (1, 1, 1)
    assert [c["ip"] for c in score.cases] == ["66.220.156.68", "192.0.2.1"]
    assert score.cases[1]["outcome"] == "unknown (not in the analysis)"
    # Both public destinations of the capture count towards the byte share (30 kB in all).
    assert score.bytes_total == 24192 + 5479
    assert 0 < score.bytes_graph["combined"] <= score.bytes_total
    text = ev.render(score, problems, "test")
    assert "| combined | 3 | 33.3% | 33.3% | 33.3% |" in text


def test_refuses_a_different_file_of_the_same_name(tmp_path: Path, ipdata_dir: Path) -> None:
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / CAPTURE.name).write_bytes(CAPTURE.read_bytes()[:-1])
    score, problems = ev.evaluate(captures, _truth(), tmp_path / "work", ipdata_dir)
    assert score.captures == 0
    assert problems == [f"{CAPTURE.name}: content differs from blob {BLOB}"]


def test_command_line_writes_json_and_rejects_a_missing_directory(tmp_path: Path, ipdata_dir: Path) -> None:
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps(_truth()), encoding="utf-8")  # JSON is YAML
    captures = tmp_path / "captures"
    captures.mkdir()
    shutil.copy(CAPTURE, captures / CAPTURE.name)
    out = tmp_path / "scores.json"
    argv = [str(captures), "--truth", str(truth), "--data-dir", str(ipdata_dir), "--json", str(out)]
    assert ev.main(argv) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["scores"]["combined"]["n"] == 3
    assert ev.main([str(tmp_path / "nowhere"), "--truth", str(truth)]) == 3


@pytest.mark.parametrize(
    ("path", "captures_at_least", "judged_at_least"),
    [
        (TRUTH, 40, 150),
        (HELDOUT, 20, 30),
        (HELDOUT2, 70, 75),
        (HELDOUT3, 20, 35),
        (HELDOUT4, 35, 60),
        (HELDOUT5, 25, 60),
        (HELDOUT6, 70, 130),
        (HELDOUT7, 80, 260),
        (HELDOUT8, 40, 130),
        (HELDOUT9, 55, 140),
        (HELDOUT10, 60, 230),
    ],
)
def test_shipped_truth_files_are_consistent(path: Path, captures_at_least: int, judged_at_least: int) -> None:
    doc = ev.load_truth(path)
    captures = doc["captures"]
    assert len(captures) >= captures_at_least
    judged = [d for c in captures for d in c["destinations"] if d["judged"]]
    assert len(judged) >= judged_at_least
    for capture in captures:
        assert capture["repository"] in REPOSITORIES
        assert len(capture["blob"]) == 40 and len(capture["commit"]) == 40
    assert len({c["file"] for c in captures}) == len(captures)
    for dest in judged:
        assert dest["expected"]["controller"] and dest["expected"]["jurisdiction"]
        layer = dest[dest["expected"]["layer"]]
        assert layer["controller"] == dest["expected"]["controller"]
        assert layer["why"]


def test_held_out_sets_share_no_capture() -> None:
    """Each held-out set is new traffic: no capture (by content) is in two truth files."""
    seen: dict[str, Path] = {}
    for path in (
        TRUTH,
        HELDOUT,
        HELDOUT2,
        HELDOUT3,
        HELDOUT4,
        HELDOUT5,
        HELDOUT6,
        HELDOUT7,
        HELDOUT8,
        HELDOUT9,
        HELDOUT10,
    ):
        for capture in ev.load_truth(path)["captures"]:
            assert capture["blob"] not in seen, (
                f"{capture['file']} is in {seen.get(capture['blob'])} and {path}"
            )
            seen[capture["blob"]] = path
