"""The hooks a veilbench plugin can implement (the public plugin contract).

A plugin is a module (or package) exposed through the ``veilbench`` entry-point group::

    # pyproject.toml
    [project.entry-points.veilbench]
    posterize = "veilbench_posterize"

that implements some of these hooks, each marked with :data:`hookimpl`::

    from veilbench import hookimpl


    @hookimpl
    def register_attacks(register):
        register("posterize", posterize, parameter="bits per channel", sweep=[8, 5, 3, 2, 1])

Each ``register_*`` hook receives a ``register(name, factory, **metadata)`` callback. The factory
is stored, not called: listing never loads weights. A factory may be a ``"module:attr"`` string
wrapped by :func:`veilbench.lazy.factory`, so the plugin's heavy imports (torch) happen only
when something is created. Metadata is JSON-serialisable data shown by
``veilbench list KIND --json``; the keys each kind reads are documented on its hook. Names
contain no ``, * ? [ ] !`` or spaces.

A name registered twice (by any two plugins), a function named like a hook but not marked, a
misspelt hook, or an exception inside a hook gets the plugin skipped as a whole and reported
(``veilbench plugins``; ``--verbose`` shows the traceback; ``VEILBENCH_STRICT_PLUGINS=1`` makes
it an error). An implementation may take fewer arguments than its spec, so specs can grow
without breaking plugins.
"""

from __future__ import annotations

from collections.abc import Callable

import click
import pluggy

PROJECT = "veilbench"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Marker for plugin hook implementations.
hookimpl = pluggy.HookimplMarker(PROJECT)

#: ``register(name, factory, **metadata)``.
Register = Callable[..., None]


@hookspec
def register_models(register: Register) -> None:
    """Register face-recognition models.

    :param register: ``register(name, factory, **metadata)``.

    ``factory(space=FaceSpace, **kw)`` returns a :class:`veilbench.models.base.FaceModel`,
    usually ``FaceModel(backbone, card, space)``: the backbone maps the model's own input to raw
    embeddings; ``FaceModel`` crops, resizes, reorders channels and normalises the canonical crop
    as ``card.input`` (an :class:`~veilbench.models.base.InputSpec`) says, and L2-normalises the
    output. ``kw`` holds ``checkpoint=PATH`` when the user passes ``--checkpoint NAME=PATH``.

    Metadata: ``card`` (the :class:`~veilbench.models.base.ModelCard`: a card, a zero-argument
    function returning one, or its ``"module:function"``; building it must not load weights),
    ``weights`` (a list of :class:`~veilbench.weights.WeightFile` the factory needs, checked
    before loading; ``[]`` for random weights or a user checkpoint), ``needs`` (``"checkpoint"``
    when the model is unusable without ``--checkpoint NAME=PATH``), ``description``. Everything
    else about the model (licence, embedding size, pretrained or not) is in the card only.

    Example::

        @hookimpl
        def register_models(register):
            register(
                "thumbnail",
                factory("my_plugin.parts:thumbnail_model"),  # FaceModel(backbone, card, space)
                card="my_plugin.parts:thumbnail_card",  # ModelCard(..., pretrained=False)
                weights=[],  # random weights: nothing to fetch
                description="random projection of a grey thumbnail",
            )
    """


@hookspec
def register_protectors(register: Register) -> None:
    """Register protectors (veil crafting methods and baselines).

    :param register: ``register(name, factory, **metadata)``.

    ``factory(**params)`` returns an object following
    :class:`veilbench.protectors.contract.Protector` (``--param key=value`` pairs arrive as
    strings). What a protector is (per-image, keeps a secret, can be undone) is declared on the
    protector class only, never in metadata. Metadata: ``config`` (its hyper-parameter
    dataclass or ``"module:Class"``, so ``veilbench run`` checks ``--param`` keys and types
    before any work; without it the factory is called to check them), ``description``,
    ``demo`` (True for a demonstration or plumbing protector: ``--protector all`` and
    leaderboards leave it out unless it is named).

    Example::

        @hookimpl
        def register_protectors(register):
            register(
                "blur",
                factory("my_plugin.parts:Blur"),  # class Blur: secret = recoverable = False
                config="my_plugin.parts:BlurConfig",  # @dataclass with sigma: float = 6.0
                description="heavy blur: no secret, cannot be undone",
            )
    """


@hookspec
def register_attacks(register: Register) -> None:
    """Register image attacks used in robustness sweeps.

    :param register: ``register(name, factory, **metadata)``.

    ``factory(strength)`` returns a callable mapping an ``N x 3 x H x W`` float tensor in
    [0, 255] to another one of the same shape (see :mod:`veilbench.attacks`). Metadata:
    ``parameter`` (name and unit of the strength), ``sweep`` (the default list of strengths,
    overridable in the config file's ``[attacks.sweeps]``), ``description``.

    Example::

        def posterize(bits):
            step = 2 ** (8 - int(bits))
            return lambda x: (x / step).floor() * step


        @hookimpl
        def register_attacks(register):
            register("posterize", posterize, parameter="bits per channel", sweep=[8, 5, 3, 2, 1])
    """


@hookspec
def register_adversaries(register: Register) -> None:
    """Register adversaries: attackers that try to undo a protection (privacy under attack).

    :param register: ``register(name, factory, **metadata)``.

    ``factory()`` returns an object following :class:`veilbench.adversaries.Adversary`: a
    ``threat`` (:class:`~veilbench.adversaries.ThreatModel`: what it is given besides ``k``
    protected photos of one person: a known (original, protected) pair, other people's photos,
    the public algorithm), ``fit(public)`` called once per surrogate set with the
    :class:`~veilbench.adversaries.PublicKnowledge`, and ``reconstruct(protected, known)``
    mapping ``k x 3 x S x S`` protected photos to ``k`` reconstructions of their originals.
    ``veilbench run --adversaries`` selects them; each is scored for every ``k`` in
    ``--adversary-k``. Metadata: ``threat`` (the same ThreatModel, shown by ``veilbench list
    adversaries``), ``description``.

    Example::

        class Negative:
            threat = ThreatModel()  # only the k protected photos

            def fit(self, public):
                pass

            def reconstruct(self, protected, known=None):
                return 255 - protected


        @hookimpl
        def register_adversaries(register):
            register("negative", Negative, threat=Negative.threat, description="inverts colours")
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets.

    :param register: ``register(name, factory, **metadata)``.

    ``factory(**options)`` returns a :class:`veilbench.data.datasets.FaceDataset`, usually
    through :func:`veilbench.data.datasets.image_folder`. ``--dataset NAME`` calls it with no
    options, so it finds its own files (accept and ignore unknown keywords). Its ``alignment``
    says how photos become canonical crops: ``"yunet"`` (detect and align; web photos),
    ``"center"`` (a fixed box, for already aligned sets such as LFW deep-funneled) or ``"none"``
    (files already are canonical crops). Metadata: ``description``, ``licence``.

    Example::

        def my_faces(**_):
            return image_folder(os.environ["MY_FACES"], name="my_faces", alignment="yunet")


        @hookimpl
        def register_datasets(register):
            register("my_faces", my_faces, description="my photos", licence="mine")
    """


@hookspec
def register_measurements(register: Register) -> None:
    """Register measurements: what a run measures and records, shows and compares.

    :param register: ``register(name, factory, **metadata)``.

    ``factory()`` returns a :class:`veilbench.measurements.contract.Measurement` whose ``name``
    is the registered name; pass ``**Cls.info()`` as metadata (its title, description, scope,
    needs and metrics, shown by ``veilbench list measurements``). ``veilbench run
    --measurements`` selects them (default: all that apply to the run). Its record is written
    under ``measurements.<name>`` of each surrogate set (or of the run, with ``scope = "run"``)
    and carries its own JSON Schema fragment; ``compare``, the report (its ``template``, found
    in its ``templates`` folder) and the console summary show it with no change to veilbench.
    A measurement that raises is reported in the results' ``problems`` and the run goes on.

    Example::

        @dataclass
        class Brightness:
            \"\"\"Mean grey level of protected photos (0-255).\"\"\"

            mean: float


        class BrightnessMeasurement(Measurement):
            name = "brightness"
            title = "Brightness of protected photos"
            needs = ("protected",)
            record = Brightness
            metrics = {"brightness": Metric("brightness", "lower", "mean grey level")}

            def evaluate(self, ctx):
                photos = torch.cat([p.held_out for p in ctx.protected.values()])
                return Brightness(float(photos.mean()))

            def values(self, record, where):
                metric = self.metrics["brightness"]
                return [MetricValue(f"brightness/{where.key}", metric, record.mean)]


        @hookimpl
        def register_measurements(register):
            register("brightness", BrightnessMeasurement, **BrightnessMeasurement.info())
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``veilbench`` command line, beside the built-in ones.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(...)`` or decorate with
        ``@cli.command()``. A command may not replace an existing one. Wrap a command whose
        module is heavy in :class:`veilbench.lazy.LazyCommand` to keep ``--help`` fast.

    Example::

        @hookimpl
        def register_commands(cli):
            @cli.command("hello")
            def hello():
                \"\"\"Greet.\"\"\"
                click.echo("hello")
    """


HOOK_NAMES: tuple[str, ...] = (
    "register_models",
    "register_protectors",
    "register_attacks",
    "register_adversaries",
    "register_datasets",
    "register_measurements",
    "register_commands",
)
