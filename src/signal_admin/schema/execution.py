"""Planned execution: whole lists of objects completed a level at a time.

graphql-core completes a result one field of one object at a time, and an
asynchronous field costs it a coroutine, a future and a gather. The UI's graph
of 50 pipelines has ~3,000 fields, which that way costs tens of milliseconds of
Python before any SQL.

This execution context completes an object selection by a plan instead: the
selection is compiled once per request into one step per response key, and a
step runs over every object of the level at once, column by column. A plain
field is a `getattr`; a relation is a *batched field*: a function given all the
objects of the level that answers each one's value, so each relation costs one
call (through the request's dataloaders) per level, never one per object.

A plan is only made for selections it can answer exactly like graphql-core
would: plain and batched fields, `__typename`, lists, objects (not interfaces
or unions), scalars and enums. Anything else - a field with arguments or a
resolver that is not batched - leaves that object to graphql-core, which still
plans the lists below it. A plan that meets a value it cannot complete (a null
in a non-null field, an error from a batched field) leaves the whole list to
graphql-core too, which runs the same resolvers again (through the same
loaders, so without new SQL) and reports the error the specification
prescribes. Plans only read, so running again is safe; any exception inside a
plan, expected or not, ends in that same fallback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar, cast

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLString,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from signal_admin.schema.errors import QueryTooComplex

SourceT = TypeVar("SourceT")
RowT = TypeVar("RowT")
ValueT = TypeVar("ValueT")
ViewT = TypeVar("ViewT")
BatchFn = Callable[[Any, Sequence[Any]], Awaitable[Sequence[Any]]]
ResolverT = TypeVar("ResolverT", bound=Callable[..., Any])

_BATCHES: dict[object, BatchFn] = {}

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# Documents are refused before they run when they may ask for more nodes than
# this; lists without `first` are estimated, so the answer is counted too.
MAX_ANSWER_OBJECTS = 20_000
_NOT_MADE: Any = object()


def batched(
    batch: Callable[[Any, Sequence[SourceT]], Awaitable[Sequence[Any]]],
) -> Callable[[ResolverT], ResolverT]:
    """Declare that a field's resolver answers, for one object, what `batch`
    answers for many: `batch(context, objects)` gives one value per object, in
    order. Plans call `batch`; graphql-core calls the resolver."""

    def register(resolver: ResolverT) -> ResolverT:
        _BATCHES[resolver] = batch
        return resolver

    return register


async def one(
    batch: Callable[[Any, Sequence[SourceT]], Awaitable[Sequence[ValueT]]],
    context: Any,
    source: SourceT,
) -> ValueT:
    """What `batch` answers for one object: the body of a batched resolver."""
    (value,) = await batch(context, [source])
    return value


def once_per_row(rows: Sequence[RowT], view: Callable[[RowT], ViewT]) -> list[ViewT]:
    """`view` of each row, made once per distinct row: the 150 attachments of
    a page share a handful of templates, and each is built once."""
    views: dict[int, ViewT] = {}
    answers = []
    for row in rows:
        made = views.get(id(row), _NOT_MADE)
        if made is _NOT_MADE:
            made = views[id(row)] = view(row)
        answers.append(made)
    return answers


class AnswerTooLarge(QueryTooComplex):
    """The answer has grown past the objects one request may hold."""


class _CannotComplete(Exception):
    """A plan met a value it cannot complete the way graphql-core would."""


class _Unplannable(Exception):
    """A selection holds a field no plan can answer."""


# Completers: each turns one column of resolved values into response values.


class _Completer:
    has_batches = False

    async def complete(
        self, execution: PlannedExecutionContext, values: list[Any]
    ) -> list[Any]:
        raise NotImplementedError


class _Leaf(_Completer):
    """Scalars and enums, serialised as graphql-core does; the built-in types
    whose values are already what they serialise to skip the call."""

    def __init__(self, leaf: GraphQLScalarType | GraphQLEnumType, non_null: bool):
        self.non_null = non_null
        self.coerce = leaf.coerce_output_value
        self.exact: type | None = None
        if leaf is GraphQLString or leaf is GraphQLID:
            self.exact = str
        elif leaf is GraphQLBoolean:
            self.exact = bool
        self.is_int = leaf is GraphQLInt

    async def complete(
        self, execution: PlannedExecutionContext, values: list[Any]
    ) -> list[Any]:
        exact, is_int, coerce = self.exact, self.is_int, self.coerce
        completed: list[Any] = []
        for value in values:
            if value is None:
                if self.non_null:
                    raise _CannotComplete
                completed.append(None)
            elif type(value) is exact or (
                is_int and type(value) is int and INT_MIN <= value <= INT_MAX
            ):
                completed.append(value)
            else:
                coerced = coerce(value)
                if coerced is None or coerced is Undefined:
                    raise _CannotComplete
                completed.append(coerced)
        return completed


class _List(_Completer):
    def __init__(self, item: _Completer, non_null: bool):
        self.item = item
        self.non_null = non_null
        self.has_batches = item.has_batches

    async def complete(
        self, execution: PlannedExecutionContext, values: list[Any]
    ) -> list[Any]:
        lengths: list[int | None] = []
        items: list[Any] = []
        for value in values:
            if value is None:
                if self.non_null:
                    raise _CannotComplete
                lengths.append(None)
            elif isinstance(value, list | tuple):
                lengths.append(len(value))
                items.extend(value)
            else:
                raise _CannotComplete
        completed = await self.item.complete(execution, items)
        answers: list[Any] = []
        start = 0
        for length in lengths:
            if length is None:
                answers.append(None)
            else:
                answers.append(completed[start : start + length])
                start += length
        return answers


class _Object(_Completer):
    def __init__(self, plan: ObjectPlan, non_null: bool):
        self.plan = plan
        self.non_null = non_null
        self.has_batches = plan.has_batches

    async def complete(
        self, execution: PlannedExecutionContext, values: list[Any]
    ) -> list[Any]:
        present = [value for value in values if value is not None]
        if self.non_null and len(present) != len(values):
            raise _CannotComplete
        execution.count_objects(len(present))
        completed = iter(await self.plan.run(execution, present))
        return [None if value is None else next(completed) for value in values]


# Steps: each answers one response key for every object of a level.


class _Step:
    def __init__(self, key: str, completer: _Completer | None):
        self.key = key
        self.completer = completer

    async def values(
        self, execution: PlannedExecutionContext, sources: list[Any]
    ) -> list[Any]:
        raise NotImplementedError


class _Typename(_Step):
    def __init__(self, key: str, name: str):
        super().__init__(key, None)
        self.name = name

    async def values(
        self, execution: PlannedExecutionContext, sources: list[Any]
    ) -> list[Any]:
        return [self.name] * len(sources)


class _Attribute(_Step):
    def __init__(self, key: str, attribute: str, completer: _Completer):
        super().__init__(key, completer)
        self.attribute = attribute

    async def values(
        self, execution: PlannedExecutionContext, sources: list[Any]
    ) -> list[Any]:
        attribute = self.attribute
        return [getattr(source, attribute) for source in sources]


class _Batched(_Step):
    def __init__(self, key: str, batch: BatchFn, completer: _Completer):
        super().__init__(key, completer)
        self.batch = batch

    async def values(
        self, execution: PlannedExecutionContext, sources: list[Any]
    ) -> list[Any]:
        if not sources:
            return []
        values = list(await self.batch(execution.context_value, sources))
        if len(values) != len(sources):
            raise _CannotComplete
        return values


class ObjectPlan:
    """How to complete one selection on one object type, for many objects."""

    def __init__(self, steps: list[_Step]):
        self.steps = steps
        self.keys = [step.key for step in steps]
        self.has_batches = any(
            isinstance(step, _Batched)
            or (step.completer is not None and step.completer.has_batches)
            for step in steps
        )

    async def run(
        self, execution: PlannedExecutionContext, sources: list[Any]
    ) -> list[dict[str, Any]]:
        columns = []
        for step in self.steps:
            values = await step.values(execution, sources)
            if step.completer is not None:
                values = await step.completer.complete(execution, values)
            columns.append(values)
        keys = self.keys
        return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def _drive(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The result of a coroutine that never waits for anything: a plan
    without batched fields, run without the event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()  # pragma: no cover - such a plan has nothing to wait for
    raise RuntimeError("a plan without batched fields waited")  # pragma: no cover


class PlannedExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, with lists of objects and single objects
    completed by plans wherever their selection allows one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keyed like collect_subfields' memo; the field list is kept alive so
        # its id cannot be reused while the request runs.
        self._plans: dict[
            tuple[GraphQLObjectType, int], tuple[FieldDetailsList, ObjectPlan | None]
        ] = {}
        self._objects = 0

    def build_per_event_executor(self, payload: Any) -> PlannedExecutionContext:
        """The execution of one subscription event: it shares this one's
        plans and counts its own objects."""
        executor = super().build_per_event_executor(payload)
        assert isinstance(executor, PlannedExecutionContext)
        executor._objects = 0
        return executor

    def count_objects(self, count: int) -> None:
        """Count objects put in the answer, refusing to go past the limit."""
        self._objects += count
        if self._objects > MAX_ANSWER_OBJECTS:
            raise AnswerTooLarge(
                f"The answer would hold more than {MAX_ANSWER_OBJECTS} objects; "
                "ask for fewer, or page through them."
            )

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        self.count_objects(1)
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        item_type: GraphQLOutputType = return_type.of_type
        non_null = isinstance(item_type, GraphQLNonNull)
        if isinstance(item_type, GraphQLNonNull):
            item_type = item_type.of_type
        if isinstance(item_type, GraphQLObjectType) and isinstance(
            result, list | tuple
        ):
            plan = self._plan(item_type, field_details_list)
            if plan is not None:
                completer = _Object(plan, non_null)

                def fallback() -> AwaitableOrValue[list[Any]]:
                    return super(PlannedExecutionContext, self).complete_list_value(
                        return_type,
                        field_details_list,
                        info,
                        path,
                        result,
                        position_context,
                    )

                items = list(result)
                return self._run(
                    lambda: completer.complete(self, items),
                    completer.has_batches,
                    fallback,
                )
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        plan = self._plan(return_type, field_details_list)
        if plan is not None:

            def fallback() -> AwaitableOrValue[list[Any]]:
                answer = super(
                    PlannedExecutionContext, self
                ).collect_and_execute_subfields(
                    return_type, field_details_list, path, result, position_context
                )
                if isinstance(answer, dict):
                    return [answer]
                return _as_list(answer)

            # complete_object_value has counted this object already.
            answers = self._run(
                lambda: plan.run(self, [result]), plan.has_batches, fallback
            )
            if isinstance(answers, list):
                return cast(dict[str, Any], answers[0])
            return _first(answers)
        return super().collect_and_execute_subfields(
            return_type, field_details_list, path, result, position_context
        )

    def _run(
        self,
        complete: Callable[[], Coroutine[Any, Any, list[Any]]],
        has_batches: bool,
        fallback: Callable[[], AwaitableOrValue[list[Any]]],
    ) -> AwaitableOrValue[list[Any]]:
        """Run a plan; on any failure but the answer's size, forget what it
        counted and hand the value to graphql-core."""
        counted = self._objects
        if not has_batches:
            try:
                answers: list[Any] = _drive(complete())
            except AnswerTooLarge:
                raise
            except Exception:
                self._objects = counted
                return fallback()
            return answers

        async def run() -> list[Any]:
            try:
                return await complete()
            except AnswerTooLarge:
                raise
            except Exception:
                self._objects = counted
                answer = fallback()
                if isinstance(answer, list):
                    return answer
                return await answer

        return run()

    def _plan(
        self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> ObjectPlan | None:
        key = (object_type, id(field_details_list))
        known = self._plans.get(key)
        if known is not None:
            return known[1]
        try:
            plan: ObjectPlan | None = self._compile(object_type, field_details_list)
        except _Unplannable:
            plan = None
        self._plans[key] = (field_details_list, plan)
        return plan

    def _compile(
        self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> ObjectPlan:
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(
            object_type, field_details_list
        )
        if new_defer_usages or object_type.is_type_of is not None:
            raise _Unplannable
        steps: list[_Step] = []
        for response_key, sub_fields in grouped_field_set.items():
            node = sub_fields[0].node
            name = node.name.value
            if name == "__typename":
                steps.append(_Typename(response_key, object_type.name))
                continue
            definition = object_type.fields.get(name)
            if definition is None or node.arguments:
                raise _Unplannable
            completer = self._completer(definition.type, sub_fields)
            steps.append(_step(response_key, definition, completer))
        return ObjectPlan(steps)

    def _completer(
        self, output_type: GraphQLOutputType, field_details_list: FieldDetailsList
    ) -> _Completer:
        non_null = isinstance(output_type, GraphQLNonNull)
        if isinstance(output_type, GraphQLNonNull):
            output_type = output_type.of_type
        if isinstance(output_type, GraphQLList):
            item = self._completer(output_type.of_type, field_details_list)
            return _List(item, non_null)
        if isinstance(output_type, GraphQLScalarType | GraphQLEnumType):
            return _Leaf(output_type, non_null)
        if isinstance(output_type, GraphQLObjectType):
            plan = self._plan(output_type, field_details_list)
            if plan is None:
                raise _Unplannable
            return _Object(plan, non_null)
        raise _Unplannable


def _step(key: str, definition: GraphQLField, completer: _Completer) -> _Step:
    field = definition.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(field, StrawberryField) or field.extensions:
        raise _Unplannable
    if field.is_basic_field:
        return _Attribute(key, field.python_name, completer)
    resolver = field.base_resolver
    batch = None if resolver is None else _BATCHES.get(resolver.wrapped_func)
    if batch is None or field.arguments:
        raise _Unplannable
    return _Batched(key, batch, completer)


async def _as_list(answer: Awaitable[Any]) -> list[Any]:
    return [await answer]


async def _first(answers: Awaitable[list[Any]]) -> Any:
    return (await answers)[0]
