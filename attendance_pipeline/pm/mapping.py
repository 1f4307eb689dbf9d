"""Identity matching: DingTalk users to PM-system accounts (pure pandas, no Dagster).

Strategies run in order: an explicit row in `config/user_mapping.csv`, then e-mail (DingTalk
`email` or `org_email`, case-insensitive), then job number against the PM login. A strategy that
finds two candidates never guesses: the employee is `ambiguous`. A PM account claimed by two
employees is never used for either. Every employee gets a row saying what happened and why.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from attendance_pipeline.config_files import ConfigError, open_config_csv
from attendance_pipeline.pm.base import PMUser
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
    claimed = frame[frame["status"] == MappingStatus.MAPPED].groupby("pm_user")["userid"].agg(list)
    for pm_user, userids in claimed.items():
        if len(userids) > 1:
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
