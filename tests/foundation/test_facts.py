from __future__ import annotations

import pytest

from david_data import facts
from david_data.errors import ConfigError


def test_scenario_boundaries_match_format_md():
    assert facts.scenario_of(0) == "face"
    assert facts.scenario_of(98_039) == "face"
    assert facts.scenario_of(98_040) == "full_body"
    assert facts.scenario_of(198_015) == "full_body"
    assert facts.scenario_of(198_016) == "upper_body"
    assert facts.scenario_of(298_007) == "upper_body"
    sizes = {s: len(facts.scenario_range(s)) for s in facts.SCENARIOS}
    assert sizes == {"face": 98_040, "full_body": 99_976, "upper_body": 99_992}
    assert sum(sizes.values()) == facts.NUM_SAMPLES
    with pytest.raises(ConfigError):
        facts.scenario_of(facts.NUM_SAMPLES)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0-2", [0, 1, 2]),
        ("7,0-1", [0, 1, 7]),
        (" 3 , 3 ", [3]),
        ("59", [59]),
    ],
)
def test_parse_parts(spec, expected):
    assert facts.parse_parts(spec) == [facts.part_name(i) for i in expected]


def test_parse_parts_all_and_sample():
    assert len(facts.parse_parts("all")) == 60
    assert facts.parse_parts("sample") == ["SynthHuman_sample.zip"]


@pytest.mark.parametrize("spec", ["60", "3-1", "x", "", "1-2-3"])
def test_parse_parts_rejects_bad_specs_with_a_hint(spec):
    with pytest.raises(ConfigError):
        facts.parse_parts(spec)


def test_member_names_round_trip():
    names = facts.sample_member_names(12)
    assert names == {
        "rgb": "rgb_0000012.png",
        "alpha": "alpha_0000012.png",
        "depth": "depth_0000012.exr",
        "normal": "normal_0000012.exr",
        "cam": "cam_0000012.txt",
    }
    for kind, name in names.items():
        ref = facts.parse_member_name(f"SynthHuman/{name}")
        assert ref == facts.MemberRef(kind=kind, sample_id=12)
    assert facts.parse_member_name("rgb_0000012.exr") is None
    assert facts.parse_member_name("rgb_12.png") is None
    assert facts.parse_member_name("readme.txt") is None


def test_part_urls_and_expected_ids():
    assert facts.part_url("SynthHuman_0007.zip", "http://h/data") == "http://h/data/SynthHuman_0007.zip"
    assert facts.expected_sample_ids("SynthHuman_0001.zip") == range(5000, 10000)
    assert facts.expected_sample_ids("SynthHuman_0059.zip") == range(295_000, 298_008)
    assert facts.expected_sample_ids(facts.SAMPLE_PART) is None
    assert facts.part_index("x/SynthHuman_0042.zip") == 42


def test_model_registry_covers_every_task():
    assert {m.task for m in facts.MODELS.values()} == set(facts.MODEL_TASKS)
    assert facts.MODELS["depth-base"].url.endswith("/models/depth-model-vitb16_384.onnx")
