"""The training generator refuses data that overlaps a test split (whole strings or shapes)."""
from __future__ import annotations

from workbench.adapters import traindata
from workbench.eval.suite import load_suite


def test_generator_refuses_a_copied_test_question() -> None:
    suite = load_suite("regional-policy")
    item = load_suite("regional-policy", "test").items[3]
    copied = item.text.replace(str(item.expected.days), "3").replace("Can I", "May I")
    clean = {"policy": [traindata._row(suite, "en", "Where is my parcel, please?", "GB", "A",
                                       task="policy")]}
    assert traindata.test_overlap(clean) == ""
    leaky = {"policy": clean["policy"] + [traindata._row(suite, item.lang, copied, item.region, "A",
                                                          task="policy")]}
    report = traindata.test_overlap(leaky)
    assert item.id in report and "LEAK" in report
