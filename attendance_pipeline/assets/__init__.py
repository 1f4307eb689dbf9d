"""Assets, one module per stage of the flow: `dingtalk` → `warehouse` → `hours` → `finance`, and
`delivery` (the definitions merge them; each asset's group is its stage)."""

import warnings

# Dagster marks BackfillPolicy as beta at every definition; the warning helps no user.
warnings.filterwarnings("ignore", message=".*is currently in beta.*")
