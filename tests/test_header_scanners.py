"""Header scanners: parsers and evaluators (HSTS, CSP, X-Content-Type-Options, Referrer-Policy,
Cache-Control) on hand-written probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanners.header_parsing import (
    HstsDirectives,
    effective_referrer_policy,
    parse_csp,
    parse_csp_list,
    parse_hsts,
)
from scanners.header_policy import HeaderPolicy, load_header_policy
from scanners.headers import evaluate_cache, evaluate_csp, evaluate_hsts, evaluate_misc
from scanners.http import HttpProbe

GOOD_HSTS = "max-age=63072000; includeSubDomains; preload"
GOOD_CSP = "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"


@pytest.fixture(scope="module")
def policy() -> HeaderPolicy:
    return load_header_policy()


def probe(
    *headers: tuple[str, str],
    url: str = "https://portal.test/home",
    kind: str = "page",
    error: str | None = None,
) -> HttpProbe:
    return HttpProbe(
        url=url,
        kind=kind,
        status=None if error else 200,
        headers=tuple(headers),
        error=error,
    )


def keys(evaluation: Any) -> list[str]:
    return [f.key for f in evaluation.findings]


# --- policy -------------------------------------------------------------------------------


def test_policy_is_versioned_data_with_sources(policy: HeaderPolicy) -> None:
    assert policy.version == "headers-v1"
    assert policy.hsts_min_max_age == 31536000
    assert policy.hsts_recommended_max_age == 63072000
    assert "Moz" in policy.sources and "Moz" in policy.refs["hsts"]
    by_name = {r.directive: r for r in policy.csp_required}
    assert by_name["object-src"].accepted == {"'none'"}
    assert by_name["object-src"].fallback == "default-src"
    assert by_name["base-uri"].accepted == {"'none'", "'self'"}
    assert by_name["frame-ancestors"].fallback is None
    assert policy.referrer_policies == {
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    }
    assert policy.cache_required == ("no-store",)


def test_malformed_policy_file_names_the_entry(tmp_path: Path) -> None:
    broken = tmp_path / "headers.json"
    broken.write_text('{"version": "x", "hsts": {}}', encoding="utf-8")
    with pytest.raises(ValueError, match="csp|min_max_age"):
        load_header_policy(broken)


# --- HSTS parser --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=31536000", HstsDirectives(31536000)),
        ("max-age=63072000; includeSubDomains; preload", HstsDirectives(63072000, True, True)),
        ("MAX-AGE=31536000; INCLUDESUBDOMAINS", HstsDirectives(31536000, True)),
        ('max-age="31536000"', HstsDirectives(31536000)),
        ("  max-age = 31536000 ;includeSubDomains ; ", HstsDirectives(31536000, True)),
        (";;max-age=10;;", HstsDirectives(10)),
        ('max-age=10; report-uri="https://x.test/a;b"', HstsDirectives(10)),
        ("max-age=0", HstsDirectives(0)),
    ],
)
def test_parse_hsts_accepts_what_rfc_6797_accepts(value: str, expected: HstsDirectives) -> None:
    assert parse_hsts(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "includeSubDomains",
        "includeSubDomains; preload",
        "max-age",
        "max-age=",
        "max-age=abc",
        "max-age=-1",
        "max-age=1.5",
        "max-age=\uff11\uff12",
        'max-age="31536000',
        'max-age="3153"6000"',
        "max-age=31536000 includeSubDomains",
        "max-age=31536000, max-age=31536000",
        "max-age=31536000; max-age=63072000",
        "max-age=31536000; includeSubDomains; includesubdomains",
        "max-age=31536000; includeSubDomains=yes",
        "max age=31536000",
    ],
)
def test_parse_hsts_rejects_junk(value: str) -> None:
    assert parse_hsts(value) is None


# --- HSTS evaluation ----------------------------------------------------------------------


def test_hsts_passes_on_every_kind_of_response(policy: HeaderPolicy) -> None:
    probes = [
        probe(("Strict-Transport-Security", GOOD_HSTS), kind=kind, url=f"https://p.test/{kind}")
        for kind in ("page", "error", "static", "redirect")
    ]
    result = evaluate_hsts(probes, policy)
    assert result.status == "passed", result.describe()
    assert result.findings == ()
    assert result.measured == "max-age=63072000 on 4/4 HTTPS responses"
    assert "31536000" in result.threshold and "headers-v1" in result.threshold


def test_hsts_header_name_is_case_insensitive(policy: HeaderPolicy) -> None:
    result = evaluate_hsts([probe(("STRICT-TRANSPORT-SECURITY", GOOD_HSTS))], policy)
    assert result.status == "passed"


def test_hsts_missing_names_url_and_kind(policy: HeaderPolicy) -> None:
    ok = probe(("Strict-Transport-Security", GOOD_HSTS))
    missing = probe(url="https://p.test/missing.css", kind="static")
    result = evaluate_hsts([ok, missing], policy)
    assert result.status == "failed"
    assert keys(result) == ["hsts.missing"]
    assert result.findings[0].where == "static https://p.test/missing.css"
    assert str(result.findings[0]).endswith("[static https://p.test/missing.css]")
    assert "missing on 1/2" in result.measured


def test_hsts_duplicate_header_fails(policy: HeaderPolicy) -> None:
    result = evaluate_hsts(
        [
            probe(
                ("Strict-Transport-Security", GOOD_HSTS),
                ("strict-transport-security", "max-age=0"),
            )
        ],
        policy,
    )
    assert result.status == "failed"
    assert keys(result) == ["hsts.multiple_headers"]


@pytest.mark.parametrize(
    "value", ["includeSubDomains", "max-age=abc", "max-age=1; max-age=63072000", ""]
)
def test_hsts_malformed_header_is_invalid(policy: HeaderPolicy, value: str) -> None:
    result = evaluate_hsts([probe(("Strict-Transport-Security", value))], policy)
    assert result.status == "failed"
    assert keys(result) == ["hsts.invalid"]


def test_hsts_max_age_zero_fails(policy: HeaderPolicy) -> None:
    result = evaluate_hsts([probe(("Strict-Transport-Security", "max-age=0"))], policy)
    assert result.status == "failed"
    assert keys(result) == ["hsts.max_age_too_short"]
    assert "drop HSTS" in result.findings[0].message


def test_hsts_one_year_passes_with_a_warning(policy: HeaderPolicy) -> None:
    result = evaluate_hsts([probe(("Strict-Transport-Security", "max-age=31536000"))], policy)
    assert result.status == "passed"
    assert [f.key for f in result.warnings] == ["hsts.max_age_below_recommended"]
    assert result.failures == ()


def test_hsts_recommended_age_can_be_set_by_the_profile(policy: HeaderPolicy) -> None:
    probes = [probe(("Strict-Transport-Security", "max-age=31536000"))]
    assert not evaluate_hsts(probes, policy, recommended_max_age=31536000).warnings
    longer = evaluate_hsts(probes, policy, recommended_max_age=94608000)
    assert "below the recommended 94608000" in longer.warnings[0].message


def test_hsts_just_below_one_year_fails(policy: HeaderPolicy) -> None:
    result = evaluate_hsts([probe(("Strict-Transport-Security", "max-age=31535999"))], policy)
    assert keys(result) == ["hsts.max_age_too_short"]


def test_hsts_minimum_can_be_set_by_the_profile(policy: HeaderPolicy) -> None:
    probes = [probe(("Strict-Transport-Security", "max-age=86400"))]
    result = evaluate_hsts(probes, policy, min_max_age=3600)
    assert result.status == "passed"
    assert keys(result) == ["hsts.max_age_below_recommended"]
    assert ">= 3600" in result.threshold


def test_hsts_ignores_plain_http_responses(policy: HeaderPolicy) -> None:
    redirect = probe(url="http://p.test/", kind="redirect")
    page = probe(("Strict-Transport-Security", GOOD_HSTS))
    assert evaluate_hsts([redirect, page], policy).status == "passed"
    only_http = evaluate_hsts([redirect], policy)
    assert only_http.status == "inconclusive"
    assert "no HTTPS responses" in only_http.reason


def test_hsts_unreachable_probe_makes_it_inconclusive(policy: HeaderPolicy) -> None:
    ok = probe(("Strict-Transport-Security", GOOD_HSTS))
    down = probe(url="https://p.test/error", kind="error", error="timed out")
    result = evaluate_hsts([ok, down], policy)
    assert result.status == "inconclusive"
    assert "error https://p.test/error (timed out)" in result.reason
    assert "1 not fetched" in result.measured


def test_hsts_failure_found_wins_over_unreachable(policy: HeaderPolicy) -> None:
    bad = probe(("Strict-Transport-Security", "max-age=60"))
    down = probe(error="connection refused")
    result = evaluate_hsts([bad, down], policy)
    assert result.status == "failed"
    assert keys(result) == ["hsts.max_age_too_short"]


def test_hsts_without_probes_is_inconclusive(policy: HeaderPolicy) -> None:
    assert evaluate_hsts([], policy).status == "inconclusive"


def _answered(status: int, *headers: tuple[str, str], kind: str = "page") -> HttpProbe:
    return HttpProbe(url=f"https://p.test/{kind}", kind=kind, status=status, headers=headers)


def test_headers_seen_only_on_error_pages_are_not_judged(policy: HeaderPolicy) -> None:
    # Every page a 500 that carries every header (a proxy's error page): no pass, and no fail
    # either when they lack them, since none of them is one of the portal's own pages.
    good = (
        ("Strict-Transport-Security", GOOD_HSTS),
        ("Content-Security-Policy", GOOD_CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    )
    errors = [_answered(500, *good), _answered(500, *good, kind="error")]
    for evaluation in (
        evaluate_hsts(errors, policy),
        evaluate_csp(errors, policy),
        evaluate_misc(errors, policy),
        evaluate_cache(errors, policy),
    ):
        assert evaluation.status == "inconclusive"
        assert evaluation.reason.startswith("every page answered with an error (HTTP 500 on 2/2")
    bare = [_answered(429), _answered(404, kind="error")]
    assert evaluate_misc(bare, policy).status == "inconclusive"


def test_headers_seen_only_on_redirects_are_not_judged(policy: HeaderPolicy) -> None:
    redirects = [_answered(302, ("Strict-Transport-Security", GOOD_HSTS)) for _ in range(2)]
    result = evaluate_hsts(redirects + [_answered(404, kind="error")], policy)
    assert result.status == "inconclusive"
    assert result.reason.startswith("no page answered successfully (HTTP 302 on 2/3, HTTP 404")


def test_one_successful_page_lets_error_pages_be_judged(policy: HeaderPolicy) -> None:
    page = _answered(200, ("Strict-Transport-Security", GOOD_HSTS))
    error = _answered(500, kind="error")
    result = evaluate_hsts([page, error], policy)
    assert result.status == "failed"
    assert keys(result) == ["hsts.missing"]


# --- CSP parser ---------------------------------------------------------------------------


def test_parse_csp_lowercases_names_and_keeps_first_duplicate() -> None:
    parsed = parse_csp(
        "  OBJECT-SRC 'NONE' ;frame-ancestors *;\tframe-ancestors 'none' ;;"
        " base-uri\t'self'  x.test"
    )
    assert parsed == {
        "object-src": ["'NONE'"],
        "frame-ancestors": ["*"],
        "base-uri": ["'self'", "x.test"],
    }


def test_parse_csp_skips_non_ascii_tokens_and_keeps_empty_directives() -> None:
    assert parse_csp("script-src caf\u00e9.test; object-src; upgrade-insecure-requests") == {
        "object-src": [],
        "upgrade-insecure-requests": [],
    }


def test_parse_csp_list_splits_policies_on_commas() -> None:
    assert parse_csp_list("object-src 'none', frame-ancestors 'self' , ;") == [
        {"object-src": ["'none'"]},
        {"frame-ancestors": ["'self'"]},
    ]
    assert parse_csp("") == {}


# --- CSP evaluation -----------------------------------------------------------------------


def test_csp_compliant(policy: HeaderPolicy) -> None:
    result = evaluate_csp([probe(("Content-Security-Policy", GOOD_CSP))], policy)
    assert result.status == "passed", result.describe()
    assert result.measured == "compliant on 1/1 responses"


def test_csp_object_src_may_come_from_default_src(policy: HeaderPolicy) -> None:
    value = "default-src 'none'; base-uri 'none'; frame-ancestors 'self'"
    assert evaluate_csp([probe(("Content-Security-Policy", value))], policy).status == "passed"


def test_csp_default_src_does_not_cover_frame_ancestors_or_base_uri(policy: HeaderPolicy) -> None:
    result = evaluate_csp([probe(("Content-Security-Policy", "default-src 'none'"))], policy)
    assert result.status == "failed"
    assert keys(result) == ["csp.base_uri_missing", "csp.frame_ancestors_missing"]
    assert "default-src does not apply" in result.findings[1].message


def test_csp_report_only_does_not_count(policy: HeaderPolicy) -> None:
    result = evaluate_csp([probe(("Content-Security-Policy-Report-Only", GOOD_CSP))], policy)
    assert result.status == "failed"
    assert keys(result) == ["csp.report_only"]


def test_csp_missing(policy: HeaderPolicy) -> None:
    assert keys(evaluate_csp([probe()], policy)) == ["csp.missing"]
    assert keys(evaluate_csp([probe(("Content-Security-Policy", " ; "))], policy)) == [
        "csp.missing"
    ]


def test_csp_report_only_next_to_a_weak_enforced_policy_is_ignored(policy: HeaderPolicy) -> None:
    result = evaluate_csp(
        [
            probe(
                ("Content-Security-Policy", "object-src 'none'; base-uri 'self'"),
                ("Content-Security-Policy-Report-Only", GOOD_CSP),
            )
        ],
        policy,
    )
    assert keys(result) == ["csp.frame_ancestors_missing"]


def test_csp_multiple_enforced_policies_combine(policy: HeaderPolicy) -> None:
    split_headers = probe(
        ("Content-Security-Policy", "object-src 'none'; frame-ancestors *"),
        ("content-security-policy", "base-uri 'self'; frame-ancestors 'self'"),
    )
    comma_list = probe(
        ("Content-Security-Policy", "object-src 'none', base-uri 'none', frame-ancestors 'none'")
    )
    result = evaluate_csp([split_headers, comma_list], policy)
    assert result.status == "passed", result.describe()


def test_csp_weak_values(policy: HeaderPolicy) -> None:
    value = "default-src 'self'; base-uri 'self' https://cdn.test; frame-ancestors https://x.test"
    result = evaluate_csp([probe(("Content-Security-Policy", value))], policy)
    assert keys(result) == ["csp.object_src_weak", "csp.base_uri_weak", "csp.frame_ancestors_weak"]
    assert "default-src 'self'" in result.findings[0].message


def test_csp_keywords_are_case_insensitive_and_first_duplicate_wins(policy: HeaderPolicy) -> None:
    value = "OBJECT-SRC 'NONE'; Base-URI 'Self'; frame-ancestors *; frame-ancestors 'none'"
    result = evaluate_csp([probe(("Content-Security-Policy", value))], policy)
    assert keys(result) == ["csp.frame_ancestors_weak"]


def test_csp_empty_source_list_means_none(policy: HeaderPolicy) -> None:
    value = "object-src; base-uri 'none' 'self'; frame-ancestors 'self'"
    assert evaluate_csp([probe(("Content-Security-Policy", value))], policy).status == "passed"


# --- X-Content-Type-Options and Referrer-Policy ---------------------------------------------


def test_misc_compliant(policy: HeaderPolicy) -> None:
    result = evaluate_misc(
        [
            probe(
                ("X-Content-Type-Options", "NoSniff"),
                ("Referrer-Policy", "strict-origin-when-cross-origin"),
            )
        ],
        policy,
    )
    assert result.status == "passed", result.describe()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["unsafe-url, no-referrer"], "no-referrer"),
        (["no-referrer, unsafe-url"], "unsafe-url"),
        (["no-referrer, made-up-policy"], "no-referrer"),
        (["unsafe-url", "Same-Origin"], "same-origin"),
        (["", " , "], None),
        (["made-up-policy"], None),
    ],
)
def test_referrer_policy_last_recognised_token_wins(
    values: list[str], expected: str | None
) -> None:
    assert effective_referrer_policy(values) == expected


def test_referrer_policy_fallback_list_passes(policy: HeaderPolicy) -> None:
    result = evaluate_misc(
        [
            probe(
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "unsafe-url, no-referrer"),
            )
        ],
        policy,
    )
    assert result.status == "passed"
    assert "Referrer-Policy no-referrer" in result.measured


def test_referrer_policy_weak_missing_and_invalid(policy: HeaderPolicy) -> None:
    weak = probe(
        ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer, unsafe-url")
    )
    missing = probe(("X-Content-Type-Options", "nosniff"))
    invalid = probe(("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "strict"))
    result = evaluate_misc([weak, missing, invalid], policy)
    assert keys(result) == [
        "referrer_policy.weak",
        "referrer_policy.missing",
        "referrer_policy.invalid",
    ]


@pytest.mark.parametrize(
    ("values", "key"),
    [((), "xcto.missing"), (("sniff, nosniff",), "xcto.invalid"), (("",), "xcto.invalid")],
)
def test_nosniff_must_be_the_first_value(
    policy: HeaderPolicy, values: tuple[str, ...], key: str
) -> None:
    headers = [("X-Content-Type-Options", v) for v in values] + [("Referrer-Policy", "same-origin")]
    assert keys(evaluate_misc([probe(*headers)], policy)) == [key]


def test_nosniff_followed_by_other_values_still_counts(policy: HeaderPolicy) -> None:
    result = evaluate_misc(
        [probe(("X-Content-Type-Options", "nosniff, foo"), ("Referrer-Policy", "no-referrer"))],
        policy,
    )
    assert result.status == "passed"


# --- Cache-Control ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [("Cache-Control", "no-store")],
        [("cache-control", "private, NO-STORE, max-age=0")],
        [("Cache-Control", "private"), ("Cache-Control", "no-store")],
    ],
)
def test_cache_no_store_passes(policy: HeaderPolicy, headers: list[tuple[str, str]]) -> None:
    assert evaluate_cache([probe(*headers)], policy).status == "passed"


def test_cache_without_no_store_fails(policy: HeaderPolicy) -> None:
    quoted = probe(("Cache-Control", 'private, no-cache="Set-Cookie, no-store"'))
    missing = probe(url="https://p.test/records")
    result = evaluate_cache([quoted, missing], policy)
    assert result.status == "failed"
    assert keys(result) == ["cache.no_store_missing", "cache.missing"]
    assert result.findings[1].where == "page https://p.test/records"


def test_cache_unreachable_is_inconclusive(policy: HeaderPolicy) -> None:
    result = evaluate_cache([probe(error="connection refused")], policy)
    assert result.status == "inconclusive"
    assert "connection refused" in result.reason
