"""Binds every feature file to the step modules: one test per scenario."""

from pytest_bdd import scenarios

scenarios(".")
