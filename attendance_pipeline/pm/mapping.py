"""Identity matching: DingTalk users to PM-system accounts (pure pandas, no Dagster).

Strategies run in order: an explicit row in `config/user_mapping.csv`, then e-mail (DingTalk
`email` or `org_email`, case-insensitive), then job number against the PM login. A strategy that
finds two candidates never guesses: the employee is `ambiguous`. A PM account claimed by two
employees is never used for either. Every employee gets a row saying what happened and why.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from attendance_pipeline.config_files import ConfigError, open_config_csv
from attendance_pipeline.pipeline_config import Scope
from attendance_pipeline.pm.base import PMUser
from attendance_pipeline.pm.plan import dept_list, in_scope
from attendance_pipeline.vocabulary import MappingStatus

STRATEGIES = ("explicit", "email", "job_number")
MAPPING_COLUMNS = ["userid", "name", "pm_user", "pm_login", "strategy", "status", "reason"]


def load_explicit_mapping(path: Path) -> dict[str, str]:
    """`user_mapping.csv` (userid,pm_user); errors name the line."""
    mapping: dict[str, str] = {}
    if not path.exists():
        return mapping
    with open_config_csv(path) as handle:
        reader = csv.DictReader(handle)
        missing = {"userid", "pm_user"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{path} line 1: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            userid, pm_user = (row["userid"] or "").strip(), (row["pm_user"] or "").strip()
            if not userid and not pm_user:
                continue
            if not userid or not pm_user:
                raise ConfigError(f"{path} line {line}: both `userid` and `pm_user` are needed")
            if userid in mapping:
                raise ConfigError(f"{path} line {line}: `userid` {userid} is mapped twice")
            mapping[userid] = pm_user
    return mapping


# What `match_users` reads of a person, and of an account.
PERSON_FIELDS = ("userid", "name", "email", "org_email", "job_number")
ACCOUNT_FIELDS = ("pm_user", "login", "email", "name", "active")


def map_days(
    roster: pd.DataFrame,
    pm_users: pd.DataFrame,
    explicit: dict[str, str],
    scope: Scope,
) -> pd.DataFrame:
    """`match_users` for every snapshot day of the roster against that day's PM accounts, plus
    `in_scope` and `snapshot_date` per row.

    A day whose people and accounts are the same as an earlier day's (the usual case: rosters
    change on a few days a month) reuses that day's result instead of matching again.
    """
    frames = []
    done: dict[str, pd.DataFrame] = {}
    accounts_by_day = dict(list(pm_users.groupby("snapshot_date", sort=False)))
    everyone = not scope.departments and not scope.users
    for day, people in roster.groupby("snapshot_date", sort=True):
        accounts = accounts_by_day.get(day, pm_users.iloc[:0])
        key = _fingerprint(people, PERSON_FIELDS) + _fingerprint(accounts, ACCOUNT_FIELDS)
        if key not in done:
            users = [
                PMUser(r.pm_user, _str(r.login), _str(r.email), _str(r.name), bool(r.active))
                for r in accounts[list(ACCOUNT_FIELDS)].astype(object).itertuples()
            ]
            done[key] = match_users(people, users, explicit)
        mapped = done[key].copy()
        if everyone:
            mapped["in_scope"] = True
        else:
            firsts = people.drop_duplicates("userid")
            of = dict(zip(firsts["userid"], firsts["dept_ancestors"], strict=True))
            mapped["in_scope"] = [
                in_scope(u, dept_list(of.get(u)), scope) for u in mapped["userid"]
            ]
        mapped["snapshot_date"] = day
        frames.append(mapped)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _fingerprint(frame: pd.DataFrame, fields: tuple[str, ...]) -> str:
    """A digest of the fields' values, row by row (order included)."""
    present = [f for f in fields if f in frame.columns]
    hashed = pd.util.hash_pandas_object(frame[present], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(present).encode()).hexdigest()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def match_users(
    roster: pd.DataFrame,
    pm_users: Iterable[PMUser],
    explicit: dict[str, str] | None = None,
    strategies: tuple[str, ...] = STRATEGIES,
) -> pd.DataFrame:
    """One row per DingTalk user: `mapped`, `unmapped` or `ambiguous`, with the reason."""
    accounts = [u for u in pm_users if u.active]
    by_id = {u.pm_user: u for u in accounts}
    by_email: dict[str, list[PMUser]] = defaultdict(list)
    by_login: dict[str, list[PMUser]] = defaultdict(list)
    for account in accounts:
        if isinstance(account.email, str) and account.email.strip():
            by_email[account.email.strip().lower()].append(account)
        if isinstance(account.login, str) and account.login.strip():
            by_login[account.login.strip().lower()].append(account)
    explicit = explicit or {}

    rows = []
    people = roster.drop_duplicates("userid")
    # Plain Python values: iterating Arrow-backed columns costs ~2 µs a value.
    people = people[[f for f in PERSON_FIELDS if f in people.columns]].astype(object)
    for person in people.itertuples(index=False):
        userid = str(person.userid)
        row = {"userid": userid, "name": person.name, "pm_user": None, "pm_login": None}
        row.update(strategy=None, status=MappingStatus.UNMAPPED.value, reason="")
        tried = []
        for strategy in strategies:
            candidates, label = _candidates(strategy, person, explicit, by_id, by_email, by_login)
            if label is None:
                continue
            tried.append(label)
            if len(candidates) == 1:
                account = candidates[0]
                row.update(pm_user=account.pm_user, pm_login=account.login)
                row.update(
                    strategy=strategy, status=MappingStatus.MAPPED.value, reason=f"{label} matched"
                )
                break
            if len(candidates) > 1:
                names = ", ".join(sorted(c.pm_user for c in candidates))
                row.update(
                    strategy=strategy,
                    status=MappingStatus.AMBIGUOUS.value,
                    reason=f"{label} matches {len(candidates)} PM accounts ({names}); add a row "
                    "to config/user_mapping.csv",
                )
                break
        else:
            row["reason"] = (
                f"no PM account for {'; '.join(tried)}"
                if tried
                else "DingTalk has no e-mail or job number for this person and no explicit mapping"
            )
        rows.append(row)

    frame = pd.DataFrame(rows, columns=MAPPING_COLUMNS)
    matched = frame[frame["status"] == MappingStatus.MAPPED]
    claims = matched["pm_user"].value_counts()
    for pm_user in sorted(claims[claims > 1].index):
        userids = matched.loc[matched["pm_user"] == pm_user, "userid"].tolist()
        mask = frame["pm_user"] == pm_user
        frame.loc[mask, "status"] = MappingStatus.AMBIGUOUS.value
        frame.loc[mask, "reason"] = (
            f"PM account {pm_user} is matched by {len(userids)} employees "
            f"({', '.join(sorted(userids))}); add rows to config/user_mapping.csv"
        )
        frame.loc[mask, "pm_user"] = None
    return frame.sort_values("userid").reset_index(drop=True)


def _candidates(
    strategy: str,
    person: object,
    explicit: dict[str, str],
    by_id: dict[str, PMUser],
    by_email: dict[str, list[PMUser]],
    by_login: dict[str, list[PMUser]],
) -> tuple[list[PMUser], str | None]:
    userid = str(getattr(person, "userid"))  # noqa: B009
    if strategy == "explicit":
        if userid not in explicit:
            return [], None
        target = explicit[userid]
        found = [by_id[target]] if target in by_id else []
        return found, f"explicit mapping to {target}"
    if strategy == "email":
        emails = {
            str(value).strip().lower()
            for value in (getattr(person, "email", None), getattr(person, "org_email", None))
            if isinstance(value, str) and value.strip()
        }
        if not emails:
            return [], None
        unique = {a.pm_user: a for e in emails for a in by_email.get(e, [])}
        return list(unique.values()), f"e-mail {' / '.join(sorted(emails))}"
    if strategy == "job_number":
        number = getattr(person, "job_number", None)
        if not isinstance(number, str) or not number.strip():
            return [], None
        return list(by_login.get(number.strip().lower(), [])), f"job number {number}"
    raise ValueError(f"unknown matching strategy {strategy!r}")


def mapping_fixes(mapping: pd.DataFrame, roster: pd.DataFrame) -> dict[str, str]:
    """What to do for each employee who is not mapped: name the e-mail a PM account needs
    (masked: `held_back` is a warehouse table, and finance sees names and ids only)."""
    emails: dict[str, str] = {}
    for column in ("org_email", "email"):
        if column in roster.columns:
            for userid, value in zip(roster["userid"], roster[column], strict=True):
                if isinstance(value, str) and "@" in value:
                    emails[str(userid)] = value
    fixes = {}
    problems = mapping[mapping["status"] != MappingStatus.MAPPED].drop_duplicates("userid")
    for userid, status in zip(problems["userid"], problems["status"], strict=True):
        explicit = f"add `{userid},<pm_user>` to config/user_mapping.csv"
        if status == "ambiguous":
            fixes[str(userid)] = f"several PM accounts match: {explicit} to choose one"
        elif str(userid) in emails:
            fixes[str(userid)] = (
                f"create a PM account with e-mail {_masked(emails[str(userid)])}, or {explicit}"
            )
        else:
            fixes[str(userid)] = f"{explicit} (DingTalk has no e-mail for this person)"
    return fixes


def _masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}"
