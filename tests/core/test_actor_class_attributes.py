"""The decorated class stays the user's class: constants, static and class methods,
bases' attributes and dir() through the decorated name; subclassing it is refused."""
from __future__ import annotations

import pytest

import actorium
from actorium.exceptions import ActorClassInheritanceException


def _hierarchy():
    """Plain bases live in a function: workers cannot import this test module by name, so
    the classes must travel by value, as a script's would."""
    class Grandparent:
        GRANDPARENT = 1

    class Parent(Grandparent):
        PARENT = 10

    class Mixin:
        MIXIN = 100

    @actorium.remote
    class Config(Parent, Mixin):
        LIMIT = 1000

        def __init__(self, start=0):
            self.start = start

        @staticmethod
        def double(x):
            return 2 * x

        @classmethod
        def limit_plus(cls, x):
            return cls.LIMIT + x

        def total(self):
            # the decorated name, as a Ray user writes it inside the actor
            return (Config.LIMIT + Config.PARENT + Config.GRANDPARENT + Config.MIXIN
                    + self.start)

        def helpers(self):
            return Config.double(3), Config.limit_plus(1)
    return Grandparent, Parent, Mixin, Config


Grandparent, Parent, Mixin, Config = _hierarchy()


def test_class_constant_is_reachable_through_the_decorated_class():
    assert Config.LIMIT == 1000


def test_static_method_is_callable_through_the_decorated_class():
    assert Config.double(21) == 42


def test_classmethod_is_callable_through_the_decorated_class():
    assert Config.limit_plus(5) == 1005


def test_attributes_of_base_classes_are_reachable_through_the_decorated_class():
    assert (Config.GRANDPARENT, Config.PARENT, Config.MIXIN) == (1, 10, 100)


def test_dir_of_the_decorated_class_lists_its_methods_and_constants():
    names = dir(Config)
    assert {"total", "helpers", "double", "limit_plus", "LIMIT", "remote"} <= set(names)


def test_the_decorated_class_is_an_instance_of_the_users_class_hierarchy():
    assert isinstance(Config, Parent) and isinstance(Config, Mixin)


def test_class_attributes_are_reachable_inside_the_actors_methods(shared_cluster):
    a = Config.remote(5)
    assert actorium.get(a.total.remote(), timeout=60) == 1116
    assert tuple(actorium.get(a.helpers.remote(), timeout=60)) == (6, 1001)


def test_options_keep_the_class_attributes():
    assert Config.options(num_cpus=0).LIMIT == 1000


def test_inheriting_from_an_actor_class_raises_actor_class_inheritance_exception():
    with pytest.raises(ActorClassInheritanceException,
                       match="Attempted to define subclass 'Child' of actor class 'Config'"):
        class Child(Config):
            pass


def test_inheriting_from_a_plain_base_then_decorating_works(shared_cluster):
    base = _hierarchy()[1]

    @actorium.remote
    class Child(base):
        def value(self):
            return self.PARENT + Child.GRANDPARENT

    assert actorium.get(Child.remote().value.remote(), timeout=60) == 11


def test_calling_the_users_constructor_through_a_classmethod_is_refused():
    @actorium.remote
    class Made:
        @classmethod
        def make(cls):
            return cls()

    with pytest.raises(TypeError, match="remote"):
        Made.make()
