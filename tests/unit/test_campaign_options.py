"""Campaign options: the text forms, the CLI's checks, and the plan of legs (no Docker)."""

from __future__ import annotations

import argparse

import pytest

from chaos.campaign.cli import add_campaign_parser, options_from
from chaos.campaign.engine import allowed_vacuous, engine_phases
from chaos.campaign.options import (
    OptionError,
    PhaseSpec,
    ReplicaLimit,
    parse_counts,
    parse_limits,
    parse_pairs,
    parse_phases,
)
from chaos.campaign.plan import estimate_s, plan_legs, segments
from chaos.cli import main


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_campaign_parser(parser.add_subparsers(dest="command"), lambda a: 0)
    return parser.parse_args(["campaign", *argv])


def test_phases_parse_in_order_with_names() -> None:
    assert parse_phases("20x40, 40x60s") == (PhaseSpec("p1", 20, 40.0), PhaseSpec("p2", 40, 60.0))
    assert parse_phases("5x1.5", prefix="ramp") == (PhaseSpec("ramp1", 5, 1.5),)


@pytest.mark.parametrize("text", ["", "20", "0x10", "20x0", "x10", "20x10,abc"])
def test_bad_phases_are_one_line_errors(text: str) -> None:
    with pytest.raises(OptionError, match="--phases"):
        parse_phases(text)


def test_counts_take_lists_and_ranges() -> None:
    assert parse_counts("1-4") == (1, 2, 3, 4)
    assert parse_counts("1,3") == (1, 3)
    for bad in ("0-2", "1,1", "9", "a", ""):
        with pytest.raises(OptionError, match="--replica-counts"):
            parse_counts(bad)


def test_pairs_and_limits() -> None:
    assert parse_pairs(["autovacuum=off", "GOGC=200", "autovacuum=on"], "--x") == (
        ("GOGC", "200"),
        ("autovacuum", "on"),
    )
    with pytest.raises(OptionError, match="KEY=VALUE"):
        parse_pairs(["novalue"], "--pg-setting")
    assert parse_limits(["r1=0.5:256m", "r2=1.5", "r3=-:1g"]) == (
        ("r1", ReplicaLimit(0.5, 256)),
        ("r2", ReplicaLimit(1.5, None)),
        ("r3", ReplicaLimit(None, 1024)),
    )
    for bad in ("x1=1", "r1=abc", "r1=0", "r1=1:12m", "r1=1:lots"):
        with pytest.raises(OptionError, match="--replica-limits"):
            parse_limits([bad])


def test_options_carry_the_campaign_defaults() -> None:
    opts = options_from(parse("faults", "--seed", "7"), "v1.59.0")
    assert (opts.campaign, opts.build, opts.replicas, opts.seed) == ("faults", "v1.59.0", 3, 7)
    assert opts.kill and opts.cancels == 12 and opts.latency_ms == 10_000
    assert opts.phases == (PhaseSpec("burst", 60),)
    baseline = options_from(parse("baseline", "--replicas", "3"), "v1.59.0")
    assert baseline.replicas == 1  # the baseline is one replica whatever is asked
    soak = options_from(parse("soak", "--minutes", "90"), "v1.59.0")
    assert soak.phases == (PhaseSpec("soak", 30, 5400.0),) and soak.db_sample_s == 10.0
    env = options_from(
        parse("burst", "--replica-env", "GOGC=200", "--pg-setting", "autovacuum=off"), "v"
    )
    assert env.replica_env == (("GOGC", "200"),) and env.pg_settings == (("autovacuum", "off"),)


def test_option_checks_say_what_is_wrong() -> None:
    with pytest.raises(OptionError, match=r"--replicas must be 1\.\.8"):
        options_from(parse("burst", "--replicas", "9"), "v")
    with pytest.raises(OptionError, match="cluster has 2 replicas"):
        options_from(parse("burst", "--replicas", "2", "--replica-limits", "r3=1"), "v")
    with pytest.raises(OptionError, match="--repetitions must be >= 2"):
        options_from(
            parse("compare", "--baseline", "a", "--candidate", "b", "--repetitions", "1"), "v"
        )
    with pytest.raises(OptionError, match="--scale must be > 0"):
        options_from(parse("burst", "--scale", "0"), "v")


def test_cli_bad_value_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", "sweep", "--replica-counts", "0-9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("loomchaos campaign: --replica-counts")


def test_sweep_is_one_leg_per_count_and_the_rest_one_leg() -> None:
    sweep = plan_legs(options_from(parse("sweep", "--replica-counts", "1-3"), "v1"))
    assert [(leg.name, leg.replicas) for leg in sweep] == [("r1", 1), ("r2", 2), ("r3", 3)]
    (ramp,) = plan_legs(options_from(parse("ramp"), "v1"))
    assert [p.scale for p in ramp.phases] == [20, 40, 80, 160] and ramp.name == "ramp"


def test_compare_interleaves_the_builds_abba() -> None:
    opts = options_from(
        parse("compare", "--baseline", "v1.58.0", "--candidate", "v1.59.0", "--repetitions", "3"),
        "v1.59.0",
    )
    legs = plan_legs(opts)
    assert [(leg.side, leg.build) for leg in legs] == [
        ("baseline", "v1.58.0"),
        ("candidate", "v1.59.0"),
        ("candidate", "v1.59.0"),
        ("baseline", "v1.58.0"),
        ("baseline", "v1.58.0"),
        ("candidate", "v1.59.0"),
    ]
    assert {p.name for leg in legs for p in leg.phases} == {"rep1", "rep2", "rep3"}
    assert len({leg.name for leg in legs}) == len(legs)


def test_estimate_counts_phases_and_the_kill() -> None:
    opts = options_from(parse("sustained", "--phases", "10x30,10x30"), "v1")
    assert estimate_s(plan_legs(opts), 2.0) == pytest.approx(25 + 60)
    faults = options_from(parse("faults"), "v1")
    assert estimate_s(plan_legs(faults), 10.0) == pytest.approx(25 + 80 + 25)


def test_circuits_only_in_burst_campaigns_with_their_own_latency() -> None:
    opts = options_from(parse("burst", "--workload", "circuit"), "v1")
    assert (opts.workload, opts.latency_ms, opts.jitter_ms) == ("circuit", 200, 50)
    assert (
        options_from(
            parse("burst", "--workload", "circuit", "--latency-ms", "500"), "v1"
        ).latency_ms
        == 500
    )
    with pytest.raises(OptionError, match="--per-user-cap must be >= 3"):
        options_from(parse("burst", "--workload", "circuit", "--per-user-cap", "2"), "v1")
    with pytest.raises(SystemExit):
        parse("sustained", "--workload", "circuit")


def test_engine_phases_and_what_a_leg_may_leave_vacuous() -> None:
    (burst,) = plan_legs(options_from(parse("burst"), "v1"))
    (phase,) = engine_phases(burst.phases)
    assert (phase.scale, phase.max_waves, phase.name) == (60, 1, "burst")
    (sustained,) = plan_legs(options_from(parse("sustained", "--phases", "5x30"), "v1"))
    assert [(p.scale, p.duration_s) for p in engine_phases(sustained.phases)] == [(5, 30.0)]
    assert allowed_vacuous(burst) == ["cancel_classification", "bounded_recovery"]
    (faults,) = plan_legs(options_from(parse("faults"), "v1"))
    assert allowed_vacuous(faults) == []
    # A later segment: the faults ran in the first, so this one has none to judge.
    assert allowed_vacuous(faults, faults=False) == ["cancel_classification", "bounded_recovery"]
    (no_kill,) = plan_legs(options_from(parse("faults", "--cancels", "0", "--no-kill"), "v1"))
    assert allowed_vacuous(no_kill) == ["cancel_classification", "bounded_recovery"]


def test_a_soak_is_judged_in_segments_and_bursts_are_never_cut() -> None:
    assert segments((PhaseSpec("p1", 5, 30.0),), None) == [(PhaseSpec("p1", 5, 30.0),)]
    cut = segments((PhaseSpec("soak", 30, 1500.0),), 600.0)
    assert cut == [
        (PhaseSpec("soak", 30, 600.0),),
        (PhaseSpec("soak", 30, 600.0),),
        (PhaseSpec("soak", 30, 300.0),),
    ]
    mixed = segments((PhaseSpec("a", 1, 400.0), PhaseSpec("b", 2, 400.0)), 600.0)
    assert mixed == [
        (PhaseSpec("a", 1, 400.0), PhaseSpec("b", 2, 200.0)),
        (PhaseSpec("b", 2, 200.0),),
    ]
    assert segments((PhaseSpec("burst", 9),), 600.0) == [(PhaseSpec("burst", 9),)]
    soak = options_from(parse("soak", "--minutes", "25"), "v1")
    (leg,) = plan_legs(soak)
    assert leg.segment_s == 300.0 and len(segments(leg.phases, leg.segment_s)) == 5
    (default,) = plan_legs(options_from(parse("soak"), "v1"))
    assert len(segments(default.phases, default.segment_s)) == 1
    assert plan_legs(options_from(parse("sustained"), "v1"))[0].segment_s is None
