"""How each model family puts n images and a question into one prompt.

Three shapes cover the reference inference scripts (PROTOCOLS.md section 1.4):

* `RawLayout`: a fixed prompt string around the user content (Phi-3.5-V, Idefics3, LLaVA-Interleave,
  DeepSeek-VL2), written as a Python format string and pinned by golden tests.
* `TextChatLayout`: the same kind of user content, rendered by the tokenizer's chat template (InternVL2.5).
* `ChatLayout`: typed content items `[image, ..., image, text]` rendered by the checkpoint's own
  chat template (Qwen2-VL, LLaVA-OneVision).

The images always come first, in order, then the question, unchanged. A task's system prompt
(`system_prompt` in its generation_kwargs: MIR-SafetyBench) becomes a system turn where the prompt is
rendered by a chat template; a raw layout has no system turn (`takes_system` False: the adapter
records that the system prompt was not sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class TemplateOwner(Protocol):
    """A processor or tokenizer: anything with Hugging Face's apply_chat_template."""

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class ContentLayout:
    """User content: one `image_block` per image (`{i}`: 1-based index, `{image}`: placeholder token)."""

    image_block: str
    joiner: str = ""
    before_question: str = ""
    image_token: str = "<image>"

    def content(self, question: str, n_images: int, image_token: str | None = None) -> str:
        token = image_token or self.image_token
        blocks = self.joiner.join(self.image_block.format(i=i, image=token) for i in range(1, n_images + 1))
        return blocks + self.before_question + question

    needs_template_owner = False
    takes_system = False

    def template_owner(self, processor: Any) -> Any:
        """Whose chat template renders this layout: the tokenizer's, for plain-string content."""
        return getattr(processor, "tokenizer", processor)


@dataclass(frozen=True)
class RawLayout(ContentLayout):
    """`template` is a format string with one field, `{content}`."""

    template: str = "{content}"

    def render(
        self,
        question: str,
        n_images: int,
        owner: TemplateOwner | None = None,
        image_token: str | None = None,
        system: str | None = None,
    ) -> str:
        return self.template.format(content=self.content(question, n_images, image_token))


@dataclass(frozen=True)
class TextChatLayout(ContentLayout):
    needs_template_owner = True
    takes_system = True

    def render(
        self,
        question: str,
        n_images: int,
        owner: TemplateOwner | None = None,
        image_token: str | None = None,
        system: str | None = None,
    ) -> str:
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages.append({"role": "user", "content": self.content(question, n_images, image_token)})
        return _apply(owner, messages)


@dataclass(frozen=True)
class ChatLayout:
    needs_template_owner = True
    takes_system = True
    image_token: str = ""  # the template writes the placeholders itself

    def template_owner(self, processor: Any) -> Any:
        return processor

    def render(
        self,
        question: str,
        n_images: int,
        owner: TemplateOwner | None = None,
        image_token: str | None = None,
        system: str | None = None,
    ) -> str:
        items: list[dict[str, str]] = [{"type": "image"} for _ in range(n_images)]
        items.append({"type": "text", "text": question})
        messages: list[dict[str, Any]] = []
        if system is not None:  # typed, as the user turn: the templates iterate content items
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.append({"role": "user", "content": items})
        return _apply(owner, messages)


Layout = RawLayout | TextChatLayout | ChatLayout


def _apply(owner: TemplateOwner | None, messages: list[dict[str, Any]]) -> str:
    if owner is None:
        raise ValueError("this layout renders through the checkpoint's chat template; pass its processor")
    text = owner.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str):  # some processors return a one-element batch
        text = text[0]
    return str(text)
