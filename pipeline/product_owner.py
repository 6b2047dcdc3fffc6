"""The Product Owner program: concept + requirements (+ previous vision) -> vision + review."""

from __future__ import annotations

import dspy


class ProductOwner(dspy.Signature):
    """You are the Product Owner of a new product. From the product concept and its requirements,
    write the product vision the team will build toward, then review the requirements as the
    Product Owner would before sprint planning. When an existing vision is given, evolve it
    rather than starting over. Refer to requirements by their ids."""

    concept: str = dspy.InputField(desc="what the product is, for whom, and the problem it solves")
    requirements_yaml: str = dspy.InputField(
        desc="YAML list of requirements, each with id, title, priority (must/should/could) and acceptance criteria"
    )
    existing_vision: str = dspy.InputField(desc="the current product vision; empty when there is none yet")
    product_vision: str = dspy.OutputField(
        desc="3-6 sentences: who it is for, the problem, the outcome it enables, and how the requirements serve it (cite their ids)"
    )
    product_owner_review: str = dspy.OutputField(
        desc="a verdict line (Approved / Changes requested) followed by 2-5 bullet points, each citing a requirement id or priority"
    )


class ProductOwnerProgram(dspy.Module):
    def __init__(self):
        super().__init__()
        self.generate = dspy.Predict(ProductOwner)

    def forward(self, concept: str, requirements_yaml: str, existing_vision: str = ""):
        return self.generate(concept=concept, requirements_yaml=requirements_yaml, existing_vision=existing_vision)


# Its fields, as its signature declares them (for tests and the seed's importer).
INPUT_FIELDS = tuple(ProductOwner.input_fields)
OUTPUT_FIELDS = tuple(ProductOwner.output_fields)
