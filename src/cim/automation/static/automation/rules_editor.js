// The automation rule editor: the trigger, and the steps as a list (add, remove, reorder) with nested branches
// and waits, each kept as JSON in a hidden input. The conditions use the segment rule builder (builder.js).
(function () {
  "use strict";
  var node = document.getElementById("rule-editor");
  if (!node) {
    return;
  }
  var editor = JSON.parse(node.textContent);
  var conditionCatalogue = JSON.parse(document.getElementById("rule-catalogue").textContent);
  var text = editor.text;
  var fields = {};
  conditionCatalogue.fields.forEach(function (field) { fields[field.key] = field; });
  var NO_VALUE = ["is_empty", "is_set", "is_true", "is_false"];

  function el(tag, attributes, children) {
    var element = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") {
        element.textContent = attributes[name];
      } else {
        element.setAttribute(name, attributes[name]);
      }
    });
    (children || []).forEach(function (child) { element.appendChild(child); });
    return element;
  }

  function select(label, pairs, value, onChange, blank) {
    var box = el("select", { class: "form-select form-select-sm w-auto", "aria-label": label });
    if (blank !== undefined) {
      box.appendChild(el("option", { value: "", text: blank }));
    }
    pairs.forEach(function (pair) {
      var option = el("option", { value: String(pair[0]), text: pair[1] });
      if (String(pair[0]) === String(value)) {
        option.selected = true;
      }
      box.appendChild(option);
    });
    box.addEventListener("change", function () { onChange(box.value); });
    return box;
  }

  function input(label, value, onInput, type) {
    var box = el("input", { class: "form-control form-control-sm w-auto", "aria-label": label, placeholder: label, value: value === undefined || value === null ? "" : value });
    if (type) {
      box.type = type;
    }
    box.addEventListener("input", function () { onInput(type === "number" && box.value !== "" ? Number(box.value) : box.value); });
    return box;
  }

  function read(id, fallback) {
    try {
      return JSON.parse(document.getElementById(id).value) || fallback;
    } catch (error) {
      return fallback;
    }
  }

  // ---- the trigger ----
  var triggerInput = document.getElementById("id_trigger");
  var trigger = read("id_trigger", { event: "customer.tag_added" });
  var triggerBox = document.getElementById("trigger-editor");
  var triggerTypes = {};
  editor.triggers.forEach(function (t) { triggerTypes[t.event] = t; });

  function saveTrigger() {
    triggerInput.value = JSON.stringify(trigger);
  }

  function renderTrigger() {
    var parts = [select(text.any, editor.triggers.map(function (t) { return [t.event, t.label]; }), trigger.event, function (value) {
      trigger = { event: value };
      renderTrigger();
    })];
    parts[0].id = "trigger-event";
    var options = (triggerTypes[trigger.event] || { options: [] }).options;
    var set = function (name) { return function (value) { trigger[name] = value; saveTrigger(); }; };
    if (trigger.event === "date") {
      parts.push(select(text.date_kind, editor.date_kinds, trigger.kind, function (value) { trigger.kind = value; renderTrigger(); }, text.date_kind));
      if (editor.field_kinds.indexOf(trigger.kind) >= 0) {
        parts.push(select(text.date_field, editor.customer_date_fields, trigger.field, set("field"), text.date_field));
      }
      if (trigger.kind) {
        parts.push(input(text.days, trigger.days, set("days"), "number"));
      }
    } else {
      options.forEach(function (option) {
        if (option === "segment") {
          parts.push(select(text.segment, editor.segments, trigger.segment, function (value) { trigger.segment = Number(value) || ""; saveTrigger(); }, text.segment));
        } else if (option === "stage") {
          parts.push(select(text.stage, editor.stages, trigger.stage, set("stage"), text.any));
        } else if (option === "field") {
          parts.push(select(text.field, editor.customer_fields, trigger.field, set("field"), text.any));
        } else if (option === "survey" || option === "form") {
          parts.push(input(text[option], trigger[option], set(option), "number"));
        } else {
          var box = input(text[option], trigger[option], set(option));
          box.id = "trigger-" + option;
          parts.push(box);
        }
      });
    }
    triggerBox.replaceChildren.apply(triggerBox, parts);
    saveTrigger();
  }

  // ---- the steps ----
  var stepsInput = document.getElementById("id_steps");
  var steps = read("id_steps", []);
  var stepsBox = document.getElementById("steps-editor");

  function saveSteps() {
    stepsInput.value = JSON.stringify(steps);
  }

  function conditionRows(tree) {
    var box = el("div", { class: "d-flex flex-column gap-1 mb-2" });
    var draw = function () {
      box.replaceChildren();
      tree.rules.forEach(function (condition, index) {
        var field = fields[condition.field] || conditionCatalogue.fields[0];
        var row = el("div", { class: "d-flex flex-wrap gap-1 align-items-center" });
        row.appendChild(select(text.field, conditionCatalogue.fields.map(function (f) { return [f.key, f.group + " · " + f.label]; }), field.key, function (value) {
          tree.rules[index] = { field: value, operator: (conditionCatalogue.operators[fields[value].type][0] || [""])[0] };
          draw();
          saveSteps();
        }));
        row.appendChild(select(text.value, conditionCatalogue.operators[field.type] || [], condition.operator, function (value) {
          condition.operator = value;
          draw();
          saveSteps();
        }));
        if (NO_VALUE.indexOf(condition.operator) < 0) {
          var choices = field.type === "segment" ? conditionCatalogue.segments.map(function (s) { return [s.value, s.label]; }) : field.choices;
          var many = ["in", "not_in", "has_any", "has_all", "has_none", "bought_any", "bought_none"].indexOf(condition.operator) >= 0;
          if (choices && !many) {
            row.appendChild(select(text.value, choices, condition.value, function (value) { condition.value = value; saveSteps(); }, ""));
          } else {
            var shown = Array.isArray(condition.value) ? condition.value.join(", ") : condition.value;
            row.appendChild(input(text.value, shown, function (value) {
              condition.value = many ? String(value).split(/[,，]\s*/).filter(Boolean) : value;
              saveSteps();
            }));
          }
        }
        row.appendChild(el("button", { type: "button", class: "btn btn-sm btn-link text-danger", text: text.remove }));
        row.lastChild.addEventListener("click", function () { tree.rules.splice(index, 1); draw(); saveSteps(); });
        box.appendChild(row);
      });
      var add = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary align-self-start", text: text.add_condition });
      add.addEventListener("click", function () {
        var first = conditionCatalogue.fields[0];
        tree.rules.push({ field: first.key, operator: conditionCatalogue.operators[first.type][0][0] });
        draw();
        saveSteps();
      });
      box.appendChild(add);
    };
    draw();
    return box;
  }

  function stepSettings(step) {
    var set = function (name) { return function (value) { step[name] = value; saveSteps(); }; };
    var parts = [];
    switch (step.action) {
      case "set_field": {
        var field = editor.settable.filter(function (f) { return f.key === step.field; })[0];
        parts.push(select(text.field, editor.settable.map(function (f) { return [f.key, f.label]; }), step.field, function (value) {
          step.field = value;
          step.value = "";
          renderSteps();
        }, text.field));
        if (field && field.choices) {
          parts.push(select(text.value, field.choices, step.value, set("value"), ""));
        } else if (field) {
          parts.push(input(text.value, step.value, set("value")));
        }
        break;
      }
      case "add_tag":
      case "remove_tag":
        parts.push(input(text.tag, step.tag, set("tag")));
        break;
      case "set_stage":
        parts.push(select(text.stage, editor.stages, step.stage, set("stage"), text.stage));
        break;
      case "set_owner":
        parts.push(select(text.owner, editor.owners, step.owner, function (value) { step.owner = Number(value) || ""; saveSteps(); }, text.owner));
        break;
      case "create_task":
        parts.push(input(text.title, step.title, set("title")));
        parts.push(input(text.due_days, step.due_days, set("due_days"), "number"));
        break;
      case "add_to_list":
        parts.push(select(text.list, editor.lists, step.segment, function (value) { step.segment = Number(value) || ""; saveSteps(); }, text.list));
        break;
      case "send":
        parts.push(select(text.template, editor.templates, step.template, set("template"), text.template));
        break;
      case "webhook":
        parts.push(select(text.endpoint, editor.endpoints, step.endpoint, function (value) { step.endpoint = Number(value) || ""; saveSteps(); }, text.endpoint));
        if (!step.event_type) {
          step.event_type = "rule.step";
        }
        parts.push(input(text.event_type, step.event_type, set("event_type")));
        break;
      case "wait":
        parts.push(input(text.wait_days, step.days, function (value) {
          step.days = value;
          delete step.field;
          saveSteps();
        }, "number"));
        parts.push(select(text.wait_until, editor.date_fields, step.field, function (value) {
          if (value) {
            step.field = value;
            delete step.days;
          } else {
            delete step.field;
          }
          saveSteps();
        }, text.wait_until));
        break;
    }
    return parts;
  }

  function stepList(list, prefix) {
    var box = el("ol", { class: "list-unstyled d-flex flex-column gap-2 mb-2" });
    list.forEach(function (step, index) {
      var label = prefix + (index + 1);
      var card = el("li", { class: "border rounded p-2 rule-step", "data-step": label });
      var head = el("div", { class: "d-flex flex-wrap gap-1 align-items-center" }, [el("code", { text: label })]);
      head.appendChild(select(text.add_step, editor.actions, step.action, function (value) {
        list[index] = value === "branch" ? { action: value, if: { match: "all", rules: [] }, then: [], else: [] } : { action: value };
        renderSteps();
      }));
      stepSettings(step).forEach(function (part) { head.appendChild(part); });
      var tools = el("span", { class: "ms-auto d-flex gap-1" });
      [["up", -1], ["down", 1]].forEach(function (move) {
        var button = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", "aria-label": text[move[0]], title: text[move[0]], text: move[1] < 0 ? "↑" : "↓" });
        button.disabled = index + move[1] < 0 || index + move[1] >= list.length;
        button.addEventListener("click", function () {
          var other = list[index + move[1]];
          list[index + move[1]] = step;
          list[index] = other;
          renderSteps();
        });
        tools.appendChild(button);
      });
      var remove = el("button", { type: "button", class: "btn btn-sm btn-outline-danger", text: text.remove });
      remove.addEventListener("click", function () { list.splice(index, 1); renderSteps(); });
      tools.appendChild(remove);
      head.appendChild(tools);
      card.appendChild(head);
      if (step.action === "branch") {
        step.if = step.if && step.if.rules ? step.if : { match: "all", rules: [] };
        step.then = step.then || [];
        step.else = step.else || [];
        var body = el("div", { class: "ms-3 mt-2" });
        body.appendChild(el("div", { class: "small fw-medium", text: text.if }));
        body.appendChild(conditionRows(step.if));
        body.appendChild(el("div", { class: "small fw-medium", text: text.then }));
        body.appendChild(stepList(step.then, label + ".then."));
        body.appendChild(el("div", { class: "small fw-medium", text: text.else }));
        body.appendChild(stepList(step.else, label + ".else."));
        card.appendChild(body);
      }
      box.appendChild(card);
    });
    var add = el("button", { type: "button", class: "btn btn-sm btn-outline-primary add-step", text: text.add_step });
    add.addEventListener("click", function () {
      list.push({ action: "add_tag", tag: "" });
      renderSteps();
    });
    box.appendChild(el("li", {}, [add]));
    return box;
  }

  function renderSteps() {
    stepsBox.replaceChildren(stepList(steps, ""));
    saveSteps();
  }

  renderTrigger();
  renderSteps();
})();
