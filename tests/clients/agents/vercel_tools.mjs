// The Vercel AI SDK, unchanged, against hubbub (tests/clients/test_agent_frameworks.py, issue 16):
// generateText with a tool and a step limit through @ai-sdk/openai-compatible. A 135M model is
// told what to do: the first step must call the tool, the next answers in text. Prints one JSON
// line with what happened, for the test to assert on.
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, stepCountIs, tool } from "ai";
import { z } from "zod";

const hubbub = createOpenAICompatible({ name: "hubbub", baseURL: `${process.env.HUBBUB_URL}/v1`, apiKey: "unused" });
const asked = [];
const result = await generateText({
  model: hubbub(process.env.HUBBUB_MODEL),
  prompt: "What is the weather in Oslo?",
  maxOutputTokens: 64,
  temperature: 0,
  tools: {
    get_weather: tool({
      description: "The current weather in a city",
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => {
        asked.push(city);
        return `Sunny, 21 C in ${city}`;
      },
    }),
  },
  stopWhen: stepCountIs(3),
  prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? "required" : "none" }),
});
console.log(JSON.stringify({
  asked,
  text: result.text,
  steps: result.steps.map((s) => ({
    finishReason: s.finishReason,
    toolCalls: s.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
    toolResults: s.toolResults.map((r) => ({ id: r.toolCallId, output: r.output })),
  })),
}));
