"""Energy, power and area of a simulated run: :mod:`.model` prices actions, :mod:`.account` sums them."""

# Here rather than in .model so that the CLI can show the default without importing the model.
DEFAULT_ENERGY_MODEL = "horowitz_45nm"
