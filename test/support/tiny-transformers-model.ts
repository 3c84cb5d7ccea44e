import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

// onnx-proto is CommonJS with `module.exports = root`, which Node's ESM loader cannot expose as a
// named export; require() gives the real object and `typeof import` keeps the types.
const { onnx } = createRequire(import.meta.url)("onnx-proto") as typeof import("onnx-proto");

/**
 * Writes a tiny, fully offline BERT-shaped model that @xenova/transformers can load from
 * `env.localModelPath`, so the transformers provider is tested for real without a model hub.
 *
 * The "network" is a single Gather: each token id looks up a fixed pseudo-random row, so a text's
 * vector is the mean of its tokens' rows. That is enough to check the things the provider owns:
 * loading, dimensions, batching, padding/masking and determinism. Meaning is not modelled.
 */
export async function writeTinyTransformersModel(
  rootDir: string,
  name = "fence-test/tiny-bert",
): Promise<{ modelsDir: string; model: string; hidden: number }> {
  const hidden = 16;
  const dir = path.join(rootDir, ...name.split("/"));
  await mkdir(path.join(dir, "onnx"), { recursive: true });

  const special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  const words = [
    "cat", "dog", "bird", "fish", "horse", "mouse", "invoice", "payment", "refund", "receipt",
    "order", "customer", "account", "balance", "credit", "debit", "tax", "price", "discount",
    "shipping", "delivery", "return", "policy", "contract", "tenant", "document", "search",
    "the", "a", "an", "and", "or", "of", "to", "in", "is", "for", "on", "with", "by",
    "red", "blue", "green", "big", "small", "fast", "slow", "new", "old", "good",
    "bad", "day", "week", "month", "year", ".", ",", "?", "!", "##s",
  ];
  const vocab = Object.fromEntries([...special, ...words].map((token, id) => [token, id]));
  const vocabSize = special.length + words.length;
  const id = (token: string) => vocab[token]!;

  const config = {
    model_type: "bert",
    architectures: ["BertModel"],
    vocab_size: vocabSize,
    hidden_size: hidden,
    num_hidden_layers: 1,
    num_attention_heads: 1,
    intermediate_size: hidden * 4,
    max_position_embeddings: 512,
    type_vocab_size: 2,
    pad_token_id: 0,
  };

  const sep = { id: "[SEP]", type_id: 0 };
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: special.map((content) => ({
      id: id(content), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: sep }],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: sep },
        { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: Object.fromEntries(["[CLS]", "[SEP]"].map((t) => [t, { id: t, ids: [id(t)], tokens: [t] }])),
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };

  // pad_token is required: without it batched padding fills with `undefined` and the int64
  // conversion fails ("Cannot convert undefined to a BigInt").
  const tokenizerConfig = {
    tokenizer_class: "BertTokenizer",
    do_lower_case: true,
    model_max_length: 512,
    pad_token: "[PAD]",
    unk_token: "[UNK]",
    cls_token: "[CLS]",
    sep_token: "[SEP]",
    mask_token: "[MASK]",
  };

  const modelBytes = buildGatherModel(vocabSize, hidden);
  await Promise.all([
    writeFile(path.join(dir, "config.json"), JSON.stringify(config, null, 2)),
    writeFile(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizer, null, 2)),
    writeFile(path.join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig, null, 2)),
    // The pipeline loads the quantized file by default; write both so either setting works.
    writeFile(path.join(dir, "onnx", "model.onnx"), modelBytes),
    writeFile(path.join(dir, "onnx", "model_quantized.onnx"), modelBytes),
  ]);
  return { modelsDir: rootDir, model: name, hidden };
}

/** ONNX graph: last_hidden_state = Gather(embeddings[vocab, hidden], input_ids). */
function buildGatherModel(vocabSize: number, hidden: number): Uint8Array {
  // Seeded (mulberry32) so the weights, and therefore every expected vector, are reproducible.
  let seed = 0x5eed1234;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const weights = new Float32Array(vocabSize * hidden).map(() => random() * 2 - 1);

  const int64 = onnx.TensorProto.DataType.INT64;
  const tensorType = (elemType: number, dims: (string | number)[]) => ({
    tensorType: {
      elemType,
      shape: { dim: dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })) },
    },
  });
  // BertTokenizer emits token_type_ids and the runtime only feeds inputs the graph declares, so
  // declaring all three matches what a real exported BERT looks like. Unused inputs are fine.
  const inputs = ["input_ids", "attention_mask", "token_type_ids"].map((name) => ({
    name,
    type: tensorType(int64, ["batch", "sequence"]),
  }));

  const model = onnx.ModelProto.create({
    irVersion: 8, // onnxruntime 1.14 (bundled with @xenova/transformers 2.x) supports IR <= 8
    producerName: "fence-test",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "tiny-bert",
      node: [{ opType: "Gather", input: ["embeddings", "input_ids"], output: ["last_hidden_state"], name: "lookup" }],
      initializer: [
        {
          name: "embeddings",
          dims: [vocabSize, hidden],
          dataType: onnx.TensorProto.DataType.FLOAT,
          // Float32Array bytes are little-endian on every platform Node supports, as ONNX requires.
          rawData: new Uint8Array(weights.buffer),
        },
      ],
      input: inputs,
      output: [{ name: "last_hidden_state", type: tensorType(onnx.TensorProto.DataType.FLOAT, ["batch", "sequence", hidden]) }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
