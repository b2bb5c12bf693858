"""Tokenizers: the deterministic tiny byte-level BPE, and the special tokens every Kangaroo tokenizer carries.

Both profiles use the Llama-3 chat layout (`<|start_header_id|>role<|end_header_id|>`, content,
`<|eot_id|>`), so prompts, stop tokens and label masking are the same code at both scales.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>"
START_HEADER, END_HEADER, EOT = "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"
# `<video>` is what a prompt writes where a video goes; the processor expands it to
# `<vi_start> (<vi_token> x group) <eof> ... (<vi_token> x group) <eov> <vi_end>`.
VIDEO_PLACEHOLDER = "<video>"
VISUAL_TOKEN = "<vi_token>"
VI_START, VI_END, EOF, EOV = "<vi_start>", "<vi_end>", "<eof>", "<eov>"
CHAT_SPECIAL_TOKENS = [BOS, EOS, START_HEADER, END_HEADER, EOT, PAD]
VIDEO_SPECIAL_TOKENS = [VIDEO_PLACEHOLDER, VISUAL_TOKEN, VI_START, VI_END, EOF, EOV]

# Llama-3-Instruct's template without the date header; `processing_kangaroo.render_conversation` renders
# the identical string in Python to find the assistant spans for labels.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{{ message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# The tiny tokenizer's training text: the words the synthetic corpus, its captions and multiple-choice
# questions use, so common words become single tokens; byte-level fallback still encodes any string.
_WORDS = """
a an the this that these those it its is are was were be been being has have had do does did not no yes
and or but if then than so of in on at to from by with without into onto over under above below between
after before during while when where which who what why how many much more most less few all any each every
some one two three four five six seven eight nine ten first second third fourth fifth last next previous
video clip frame frames image picture scene shot camera screen background foreground
object objects shape shapes
red green blue yellow orange purple pink brown black white gray grey cyan magenta color colour colors changes
circle square triangle rectangle star ellipse oval diamond hexagon cross line dot ball box
left right up down top bottom center middle corner edge moves move moving moved appears appear disappears
disappear turns turn becomes become changes change stays static still fast slow quickly slowly
time times second seconds minute minutes start end beginning begins ends happens happen event events order
question answer option options choose best only give letter correct true false describe caption
number count counts how long at around about approximately
A B C D E
0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 20 30 60
system user assistant you are helpful model assistant watch watches watching see sees shows show shown
there here text face person people man woman dog cat car tree sky water
dark light bright direction different same animation loop geometry geometric motion sound stock footage
free download textured hidden visible background shapes text reads large small big
""".split()
_PUNCTUATION = list(".,:;?!()'\"-/")


def build_tiny_tokenizer(vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on a fixed word list: identical on every run and machine, never out-of-vocab."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=CHAT_SPECIAL_TOKENS + VIDEO_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [" ".join(_WORDS), " " + " ".join(_WORDS), " ".join(_PUNCTUATION)]
    corpus += [f" {word}{mark}" for word in _WORDS for mark in ("", ".", ",", "?")]
    corpus += [f"{word.capitalize()} {word.capitalize()}" for word in _WORDS]  # sentence starts
    corpus += [f" {word.upper()}" for word in _WORDS]  # on-screen text in captions is often upper case
    corpus += [f"{word}." for word in _WORDS]  # replies start right after the header: no leading space
    backend.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOT,
        pad_token=PAD,
        additional_special_tokens=VIDEO_SPECIAL_TOKENS + [EOS, START_HEADER, END_HEADER],
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def add_kangaroo_special_tokens(tokenizer) -> int:
    """Give a pretrained (e.g. Llama-3) tokenizer the video markers and a chat template; returns #added."""
    missing = [
        t
        for t in VIDEO_SPECIAL_TOKENS
        if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)
    ]
    added = tokenizer.add_special_tokens({"additional_special_tokens": missing}) if missing else 0
    if tokenizer.pad_token is None:
        tokenizer.pad_token = PAD if PAD in tokenizer.get_vocab() else tokenizer.eos_token
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return added
