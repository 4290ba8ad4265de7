"""Placeholder, being written."""


def clinical_report(*args, **kwargs):
    raise NotImplementedError


def make_clinical_scorers(*args, **kwargs):
    raise NotImplementedError


def negative_predictive_value(*args, **kwargs):
    raise NotImplementedError


def positive_predictive_value(*args, **kwargs):
    raise NotImplementedError


def sensitivity_score(*args, **kwargs):
    raise NotImplementedError


def spared_biopsy_fraction(*args, **kwargs):
    raise NotImplementedError


def specificity_score(*args, **kwargs):
    raise NotImplementedError
