"""Checkpoints: save and load state dicts as .npz."""


def save(state_dict, path):
    raise NotImplementedError


def load(path):
    raise NotImplementedError
