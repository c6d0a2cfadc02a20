"""What each step gets from the configuration."""

from __future__ import annotations

from tasks.config import AutoMLConfig
from tasks.data.profile import Profile
from tasks.data.sets import SearchData
from tasks.metrics import early_stopping_watch
from tasks.search.candidates import TrialSettings


def trial_settings(config: AutoMLConfig, profile: Profile, data: SearchData) -> TrialSettings:
    """What every trial of a run shares besides the data."""
    n_classes = None if data.classes is None else len(data.classes)
    return TrialSettings(
        profile.roles, config.random_state, config.threads_per_trial,
        featurize=config.featurize,
        early_stopping=early_stopping_watch(profile.metric, n_classes),
        metric=profile.metric.name,
    )
