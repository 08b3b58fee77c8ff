// chatorder sandbox console: several simulated customers side by side + the staff work chat.
// Every action goes to /sandbox/api/…, which pushes real signed, encrypted XML to /wechat/mp
// (customers) or /wechat/work (staff, through the WeCom simulator).

const API = "/sandbox/api";
const MEDIA = "/sandbox/media/";
const TEXT_CHIPS = ["帮助", "关于", "人工"];
const INITIAL_COLUMNS = 2;

const state = {
  customers: new Map(), // openid -> {openid, name}
  columns: new Map(), // openid -> column element
  seen: new Set(), // seqs already rendered
  lastSeq: 0,
  menu: [], // the pushed menu as WeChat shows it: [{name, key} | {name, sub: [{name, key}]}], ≤ 3
  staff: new Set(), // staff userids offered in the "current staff" picker
  cards: new Map(), // "<task_id> <userid>" -> {node, card}: each recipient's copy of a template card
};
const ROBOT = "工作群机器人";

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

// Keep the text exactly (newlines via CSS pre-wrap) and turn http(s) links into anchors. A link to the
// simulated pay page opens it as the customer of this chat, so each customer pays as themselves.
function richText(text, openid) {
  const frag = document.createDocumentFragment();
  const parts = String(text ?? "").split(/(https?:\/\/[^\s，。、）)]+)/g);
  parts.forEach((part, i) => {
    if (i % 2 === 1) frag.append(el("a", { href: payAs(part, openid), target: "_blank", rel: "noopener", text: part }));
    else if (part) frag.append(document.createTextNode(part));
  });
  return frag;
}

// WeCom's markdown subset as the work chat shows it: # headings, **bold**, > quotes, [text](url),
// `code` and <font color="info|comment|warning">. Built from DOM nodes, never innerHTML.
const FONT_COLORS = { info: "md-info", comment: "md-comment", warning: "md-warning" };
function markdown(source) {
  const frag = document.createDocumentFragment();
  for (const raw of String(source ?? "").split("\n")) {
    const heading = raw.match(/^(#{1,6})\s+(.*)$/);
    const quote = raw.match(/^>\s?(.*)$/);
    const line = heading ? heading[2] : quote ? quote[1] : raw;
    const tag = heading ? "strong" : "div";
    const cls = heading ? "md-line md-h" : quote ? "md-line md-quote" : "md-line";
    frag.append(el(tag, { class: cls }, inlineMarkdown(line)));
  }
  return frag;
}

function inlineMarkdown(text) {
  const frag = document.createDocumentFragment();
  const token = /\*\*(.+?)\*\*|\[([^\]]+)\]\((https?:[^)\s]+)\)|`([^`]+)`|<font color="(\w+)">(.*?)<\/font>/g;
  let last = 0;
  for (const m of text.matchAll(token)) {
    if (m.index > last) frag.append(document.createTextNode(text.slice(last, m.index)));
    if (m[1] !== undefined) frag.append(el("strong", {}, inlineMarkdown(m[1])));
    else if (m[2] !== undefined) frag.append(el("a", { href: m[3], target: "_blank", rel: "noopener", text: m[2] }));
    else if (m[4] !== undefined) frag.append(el("code", { text: m[4] }));
    else frag.append(el("span", { class: FONT_COLORS[m[5]] || "" }, inlineMarkdown(m[6])));
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.append(document.createTextNode(text.slice(last)));
  return frag;
}

// The bot's texts speak Beijing time; the pane's clock does too, whatever the browser's zone.
const BEIJING_CLOCK = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
function beijingTime(seconds) {
  return BEIJING_CLOCK.format(new Date(seconds * 1000));
}

function payAs(url, openid) {
  if (!openid || !url.includes("/sandbox/pay/page/")) return url;
  const u = new URL(url);
  if (!u.searchParams.has("openid")) u.searchParams.set("openid", openid);
  return u.toString();
}

function mediaUrl(mediaId) {
  return MEDIA + encodeURIComponent(mediaId);
}

async function api(path, body) {
  const init = body instanceof FormData
    ? { method: "POST", body }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const resp = await fetch(API + path, init);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
  return data;
}

function setStatus(text, ok = true) {
  const node = $("#status");
  node.textContent = text;
  node.classList.toggle("bad", !ok);
}

// rendering one entry

const VIA_LABEL = { passive: "被动回复", api: "客服消息" };

function eventText(p) {
  switch (p.event) {
    case "subscribe":
      return p.scene ? `扫码关注了公众号（场景 ${p.scene}）` : "关注了公众号";
    case "unsubscribe":
      return "取消关注了公众号";
    case "SCAN":
      return `扫描了带参数二维码（场景 ${p.scene}）`;
    case "CLICK":
      return `点击菜单「${menuName(p.key)}」`;
    default:
      return `事件 ${p.event}`;
  }
}

function menuName(key) {
  const flat = state.menu.flatMap((b) => (b.sub ? b.sub : [b]));
  return flat.find((b) => b.key === key)?.name ?? key;
}

function templateCard(p) {
  const data = p.data || {};
  const value = (k) => (data[k] && typeof data[k] === "object" ? data[k].value : data[k]);
  const rows = Object.keys(data).filter((k) => k !== "first" && k !== "remark");
  const card = el("div", { class: "card template", "data-testid": "template-card" },
    el("div", { class: "card-kicker", text: "模板消息" }),
    el("div", { class: "card-title", text: value("first") || p.template_id || "通知" }));
  const dl = el("dl");
  for (const k of rows) dl.append(el("dt", { text: k }), el("dd", { text: value(k) ?? "" }));
  if (rows.length) card.append(dl);
  if (value("remark")) card.append(el("p", { class: "card-desc", text: value("remark") }));
  if (p.url) card.append(el("a", { class: "card-link", href: p.url, target: "_blank", rel: "noopener", text: "详情 ›" }));
  return card;
}

function newsCards(p) {
  const wrap = el("div", { class: "news", "data-testid": "news" });
  (p.articles || []).forEach((a, i) => {
    const card = el(a.url ? "a" : "div", {
      class: i === 0 ? "card article lead" : "card article",
      href: a.url || undefined, target: a.url ? "_blank" : undefined, rel: a.url ? "noopener" : undefined,
      "data-testid": "news-card",
    });
    if (a.picurl) card.append(el("img", { src: a.picurl, alt: "", loading: "lazy" }));
    card.append(el("div", { class: "card-title", text: a.title || "" }));
    if (a.description) card.append(el("p", { class: "card-desc", text: a.description }));
    wrap.append(card);
  });
  return wrap;
}

function body(entry) {
  const p = entry.payload || {};
  switch (entry.kind) {
    case "text":
      return el("div", { class: "bubble text" }, richText(p.content, entry.openid));
    case "markdown":
      return el("div", { class: "bubble markdown" }, markdown(p.content));
    case "image":
      return el("div", { class: "bubble image" },
        el("img", { src: p.picurl && entry.who === "user" ? p.picurl : mediaUrl(p.media_id), alt: "图片", "data-testid": "chat-image" }));
    case "news":
      return newsCards(p);
    case "template":
      return templateCard(p);
    case "subscribe": // 一次性订阅消息: a title and one content line
      return el("div", { class: "card template", "data-testid": "subscribe-card" },
        el("div", { class: "card-kicker", text: "订阅消息" }),
        el("div", { class: "card-title", text: p.title || "" }),
        el("p", { class: "card-desc" }, richText(p.data?.content?.value || "")));
    case "textcard":
      return el("div", { class: "card template" },
        el("div", { class: "card-title", text: p.title || "" }),
        el("p", { class: "card-desc" }, richText(p.description)),
        p.url ? el("a", { class: "card-link", href: p.url, target: "_blank", rel: "noopener", text: (p.btntxt || "详情") + " ›" }) : null);
    default:
      if (p.content || p.text) return el("div", { class: "bubble text" }, richText(p.content || p.text));
      return el("pre", { class: "bubble raw" }, JSON.stringify(p, null, 2));
  }
}

function renderEntry(entry) {
  if (entry.kind === "event" || entry.who === "system") {
    const text = entry.kind === "event" ? eventText(entry.payload) : entry.payload.text;
    return el("li", { class: `line meta ${entry.who}`, "data-testid": entry.who === "system" ? "msg-notice" : "msg-event", "data-seq": entry.seq },
      el("span", { text }));
  }
  const li = el("li", { class: `line ${entry.who}`, "data-testid": `msg-${entry.who}`, "data-kind": entry.kind, "data-seq": entry.seq });
  li.append(body(entry));
  if (entry.who === "bot" && VIA_LABEL[entry.via]) {
    const label = entry.kind === "template" ? "模板消息" : VIA_LABEL[entry.via];
    li.append(el("span", { class: "via", text: label }));
  }
  if (entry.kind === "image" && entry.payload?.media_id) offerScan(li, entry);
  return li;
}

// A picture holding a parametric QR code the account issued (an invite poster): offer to scan it as
// another customer. The server reads the code in the picture and maps it to its scene.
async function offerScan(li, entry) {
  const mediaId = entry.payload.media_id;
  const resp = await fetch(`${API}/scan-media?media_id=${encodeURIComponent(mediaId)}`).catch(() => null);
  if (!resp || !resp.ok) return;
  const qr = await resp.json();
  const button = el("button", {
    type: "button", class: "btn small scan-poster", "data-testid": "scan-poster", "data-scene": qr.scene,
    title: `以另一位客户的身份扫描图中的二维码（场景 ${qr.scene}）`, text: "用另一位客户扫码",
  });
  button.addEventListener("click", () => scanPoster(entry, button));
  $(".bubble", li).after(button);
}

async function scanPoster(entry, button) {
  const from = state.columns.get(entry.openid);
  button.disabled = true;
  try {
    const done = await api("/scan-media", { openid: entry.openid, media_id: entry.payload.media_id });
    state.customers.set(done.as.openid, done.as);
    const col = addColumn(done.as);
    showFollowing(col, done.as.following);
    col.scrollIntoView({ behavior: "smooth", block: "nearest", inline: "nearest" });
  } catch (err) {
    if (from) flash(from, err.message);
  } finally {
    button.disabled = false;
  }
}

function appendTo(list, node) {
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  list.append(node);
  if (nearBottom || node.classList.contains("user")) list.scrollTop = list.scrollHeight;
  // Pictures load later and change the height: stay pinned to the bottom.
  node.querySelectorAll("img").forEach((img) =>
    img.addEventListener("load", () => { list.scrollTop = list.scrollHeight; }, { once: true }));
}

// columns

function addColumn(customer) {
  if (state.columns.has(customer.openid)) return state.columns.get(customer.openid);
  const col = $("#column-template").content.firstElementChild.cloneNode(true);
  col.dataset.openid = customer.openid;
  $(".name", col).textContent = customer.name;
  $(".openid", col).textContent = customer.openid;
  $(".openid", col).title = customer.openid;
  $(".avatar", col).textContent = [...customer.name][0] || "客";
  const input = $("input.text", col);
  input.placeholder = "发消息，回车发送";
  input.setAttribute("aria-label", `${customer.name} 的消息`);
  const file = $("input[type=file]", col);
  file.setAttribute("aria-label", `以 ${customer.name} 的身份发送图片`);
  $(".chat", col).setAttribute("aria-label", `与 ${customer.name} 的聊天记录`);
  $(".chips", col).setAttribute("aria-label", `${customer.name} 的快捷菜单`);

  $(".composer", col).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    await act(col, "/say", { openid: customer.openid, text });
  });
  col.querySelector("[data-action=subscribe]").addEventListener("click", () =>
    act(col, "/subscribe", { openid: customer.openid }));
  col.querySelector("[data-action=scan]").addEventListener("click", () => {
    // A newcomer scanning sends subscribe + qrscene_<scene>; a follower sends SCAN.
    const scene = window.prompt(`${customer.name} 扫码：输入海报上的邀请码（如 K7P2Q9），或二维码场景值（如 inv_K7P2Q9）`, col.dataset.scene || "");
    if (!scene) return;
    col.dataset.scene = scene.trim();
    act(col, "/scan", { openid: customer.openid, scene: scene.trim() });
  });
  col.querySelector("[data-action=unsubscribe]").addEventListener("click", () =>
    act(col, "/unsubscribe", { openid: customer.openid }));
  file.addEventListener("change", async () => {
    const picked = file.files[0];
    if (!picked) return;
    const form = new FormData();
    form.append("openid", customer.openid);
    form.append("file", picked);
    file.value = "";
    await act(col, "/image", form);
  });

  showFollowing(col, customer.following);
  state.columns.set(customer.openid, col);
  $("#customers").append(col);
  renderChips(col);
  // Show what this customer already said and got, e.g. after a reload.
  const list = $(".chat", col);
  for (const entry of pending.get(customer.openid) || []) appendTo(list, renderEntry(entry));
  pending.delete(customer.openid);
  return col;
}

// Entries of customers without a column yet, shown when their column appears.
const pending = new Map();

function showFollowing(col, following) {
  col.classList.toggle("following", Boolean(following));
  const sub = col.querySelector("[data-action=subscribe]");
  sub.textContent = following ? "已关注" : "关注";
  sub.setAttribute("aria-pressed", following ? "true" : "false");
}

function renderChips(col) {
  const box = $(".chips", col);
  box.replaceChildren();
  const openid = col.dataset.openid;
  for (const text of TEXT_CHIPS) {
    box.append(el("button", { type: "button", class: "chip", "data-testid": "chip", "data-text": text, text,
      onclick: () => act(col, "/say", { openid, text }) }));
  }
  renderMenu(col);
}

// The custom menu as WeChat draws it: up to three buttons along the bottom; one with a sub-menu opens a
// list above it, and tapping an item sends its CLICK event.
function renderMenu(col) {
  const bar = $(".menubar", col);
  bar.replaceChildren();
  const openid = col.dataset.openid;
  const click = (b) => { closeMenus(col); if (b.key) act(col, "/click", { openid, key: b.key }); };
  for (const b of state.menu) {
    const slot = el("div", { class: "menu-slot" });
    const top = el("button", { type: "button", class: "menu-button", "data-testid": "menu-button", "data-key": b.key || undefined,
      text: b.sub ? `≡ ${b.name}` : b.name });
    if (b.sub) {
      const list = el("div", { class: "menu-sub", role: "menu", hidden: true });
      for (const item of b.sub) {
        list.append(el("button", { type: "button", class: "menu-item", role: "menuitem", "data-testid": "menu-item",
          "data-key": item.key || undefined, text: item.name, onclick: () => click(item) }));
      }
      top.setAttribute("aria-haspopup", "menu");
      top.onclick = () => { const open = list.hidden; closeMenus(col); list.hidden = !open; };
      slot.append(list);
    } else top.onclick = () => click(b);
    slot.prepend(top);
    bar.append(slot);
  }
  bar.hidden = state.menu.length === 0;
}

function closeMenus(col) {
  col.querySelectorAll(".menu-sub").forEach((m) => { m.hidden = true; });
}

async function act(col, path, payload) {
  col.classList.add("busy");
  try {
    await api(path, payload);
  } catch (err) {
    flash(col, err.message);
  } finally {
    col.classList.remove("busy");
  }
}

function flash(col, message) {
  const list = $(".chat", col);
  appendTo(list, el("li", { class: "line meta system", "data-testid": "msg-error" }, el("span", { text: `⚠ ${message}` })));
}

// staff pane: the WeCom work chat (app messages, template cards, robot posts, what staff typed)

function staffLabel(entry) {
  if (entry.via === "robot") return entry.openid || ROBOT;
  if (entry.who === "user") return entry.openid;
  return entry.openid ? `→ ${entry.openid.split("|").join("、")}` : "工作台";
}

function cardKey(taskId, userid) {
  return `${taskId} ${userid}`;
}

// A WeCom template card: titles, key-value rows, and buttons that click through the real callback.
function fillCard(node, card, replaceName) {
  replaceName = replaceName || card.replace_text || null;  // a card redrawn as settled
  node.replaceChildren();
  node.dataset.cardType = card.card_type || "";
  node.dataset.state = replaceName ? "done" : "open";
  const source = card.source?.desc;
  if (source) node.append(el("div", { class: "card-kicker", text: source }));
  const main = card.main_title || {};
  if (main.title) node.append(el("div", { class: "card-title", text: main.title }));
  if (main.desc) node.append(el("p", { class: "card-desc", text: main.desc }));
  const emphasis = card.emphasis_content;
  if (emphasis?.title) {
    node.append(el("div", { class: "card-emphasis" },
      el("strong", { text: emphasis.title }), emphasis.desc ? el("span", { text: emphasis.desc }) : null));
  }
  if (card.sub_title_text) node.append(el("p", { class: "card-sub" }, richText(card.sub_title_text)));
  const rows = card.horizontal_content_list || [];
  if (rows.length) {
    const dl = el("dl");
    for (const row of rows) dl.append(el("dt", { text: row.keyname || "" }), el("dd", { text: row.value || "" }));
    node.append(dl);
  }
  if (replaceName) {
    node.append(el("div", { class: "card-done", "data-testid": "card-done", text: replaceName }));
    return;
  }
  const buttons = card.button_list || [];
  if (!buttons.length) return;
  const bar = el("div", { class: "card-buttons", role: "group" });
  for (const b of buttons) {
    bar.append(el("button", {
      type: "button", class: `card-btn style-${b.style || 1}`, "data-testid": "card-button", "data-key": b.key, text: b.text,
      onclick: () => clickCard(node, b.key),
    }));
  }
  node.append(bar);
}

function workCard(entry) {
  const p = entry.payload || {};
  const card = p.template_card || {};
  const node = el("div", {
    class: "card template work", "data-testid": "staff-card", "data-task-id": p.task_id || card.task_id || "",
    "data-userid": entry.openid,
  });
  fillCard(node, card, null);
  state.cards.set(cardKey(node.dataset.taskId, entry.openid), { node, card });
  return node;
}

// card_update: every named recipient's copy shows the new label (buttons gone) or the new card.
function updateCards(p) {
  for (const userid of p.userids || []) {
    const found = state.cards.get(cardKey(p.task_id, userid));
    if (!found) continue;
    if (p.template_card) {
      found.card = p.template_card;
      fillCard(found.node, found.card, null);
    } else {
      fillCard(found.node, found.card, p.button?.replace_name || "已处理");
    }
  }
}

function staffMeta(entry) {
  const p = entry.payload || {};
  if (entry.kind === "card_update") {
    const what = p.template_card ? "卡片内容已更新" : `卡片已更新为「${p.button?.replace_name ?? ""}」`;
    return `${what}（${(p.userids || []).join("、")}）`;
  }
  if (entry.kind === "event") return `${entry.openid} 点击了卡片按钮「${p.button || p.key}」`;
  return p.text || "";
}

function renderStaff(entry) {
  if (entry.kind === "card_update" || entry.kind === "event" || entry.who === "system") {
    const testid = entry.who === "system" ? "staff-notice" : "staff-event";
    return el("li", { class: `staff-line meta ${entry.who}`, "data-testid": testid, "data-seq": entry.seq },
      el("span", { text: staffMeta(entry) }));
  }
  const li = el("li", { class: `staff-line ${entry.who}`, "data-testid": "staff-entry", "data-kind": entry.kind, "data-seq": entry.seq });
  const head = el("div", { class: "staff-meta" },
    el("span", { class: "staff-to", text: staffLabel(entry) }),
    el("time", { "data-testid": "staff-time", text: beijingTime(entry.at) }));
  li.append(head, entry.kind === "template_card" ? workCard(entry) : body(entry));
  return li;
}

function noteStaff(userid) {
  if (!userid || userid.includes("|") || userid === ROBOT || state.staff.has(userid)) return;
  state.staff.add(userid);
  $("#staff-list").append(el("option", { value: userid }));
  if (!$("#staff-user").value) $("#staff-user").value = userid;
}

function staffFlash(message) {
  appendTo($("#staff-log"), el("li", { class: "staff-line meta system", "data-testid": "staff-error" }, el("span", { text: `⚠ ${message}` })));
  $("#staff-empty").hidden = true;
}

async function staffAct(path, payload, busy) {
  busy.classList.add("busy");
  try {
    await api(path, payload);
  } catch (err) {
    staffFlash(err.message);
  } finally {
    busy.classList.remove("busy");
  }
}

// A button on a card is tapped by that card's recipient, as WeCom would: a template_card_event.
function clickCard(node, key) {
  node.querySelectorAll("[data-testid=card-button]").forEach((b) => { b.disabled = true; });
  staffAct("/staff/click", { userid: node.dataset.userid, task_id: node.dataset.taskId, key }, node).finally(() => {
    node.querySelectorAll("[data-testid=card-button]").forEach((b) => { b.disabled = false; });
  });
}

async function setupStaff() {
  const form = $("#staff-composer");
  const input = $("#staff-input");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value;
    const userid = $("#staff-user").value.trim();
    if (!text.trim()) return;
    if (!userid) {
      staffFlash("请先填写当前员工的 userid");
      $("#staff-user").focus();
      return;
    }
    input.value = "";
    noteStaff(userid);
    await staffAct("/staff/say", { userid, text }, form);
  });
  const resp = await fetch(`${API}/staff`);
  if (!resp.ok) return;
  const info = await resp.json();
  for (const member of info.staff || []) {
    noteStaff(member.userid);
    const option = $(`#staff-list option[value="${CSS.escape(member.userid)}"]`);
    if (option && member.name !== member.userid) option.label = member.name;
  }
  if (!info.configured) {
    input.disabled = true;
    input.placeholder = "未配置企业微信应用（WECOM_CORP_ID / TOKEN / AES_KEY）";
  }
}

// transcript long-poll

function apply(data) {
  for (const c of data.customers || []) {
    state.customers.set(c.openid, c);
    const col = state.columns.get(c.openid);
    if (col) showFollowing(col, c.following);
  }
  if (data.menu && JSON.stringify(data.menu) !== JSON.stringify(state.menu)) {
    state.menu = data.menu;
    state.columns.forEach(renderChips);
  }
  for (const entry of data.entries || []) {
    if (state.seen.has(entry.seq)) continue;
    state.seen.add(entry.seq);
    const col = state.columns.get(entry.openid);
    if (col) appendTo($(".chat", col), renderEntry(entry));
    else {
      if (!pending.has(entry.openid)) pending.set(entry.openid, []);
      pending.get(entry.openid).push(entry);
    }
  }
  // A customer who has activity (e.g. a test or a QR scan) gets a column.
  for (const openid of pending.keys()) {
    const customer = state.customers.get(openid) || { openid, name: openid };
    addColumn(customer);
  }
  const staffLog = $("#staff-log");
  for (const entry of data.staff || []) {
    if (state.seen.has(entry.seq)) continue;
    state.seen.add(entry.seq);
    if (entry.via !== "robot") noteStaff(entry.openid);
    appendTo(staffLog, renderStaff(entry));
    if (entry.kind === "card_update") updateCards(entry.payload || {});
  }
  $("#staff-empty").hidden = staffLog.children.length > 0;
  state.lastSeq = Math.max(state.lastSeq, data.last_seq || 0);
}

async function poll() {
  for (;;) {
    try {
      const resp = await fetch(`${API}/transcript?after=${state.lastSeq}&wait=10`);
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      apply(await resp.json());
      setStatus("已连接");
    } catch (err) {
      setStatus("连接中断，正在重试…", false);
      await new Promise((r) => setTimeout(r, 1500));
    }
  }
}

async function addCustomer() {
  const hidden = [...state.customers.values()].find((c) => !state.columns.has(c.openid));
  const customer = hidden || (await api("/customers", {}));
  state.customers.set(customer.openid, customer);
  const col = addColumn(customer);
  col.scrollIntoView({ behavior: "smooth", inline: "end" });
  $("input.text", col).focus();
}

async function start() {
  $("#add-customer").addEventListener("click", () => addCustomer().catch((e) => setStatus(e.message, false)));
  const resp = await fetch(`${API}/customers`);
  const info = await resp.json();
  state.menu = info.menu || [];
  if (info.brand) $("#account-name").textContent = `公众号「${info.brand}」模拟器`;
  for (const c of info.customers) state.customers.set(c.openid, c);
  info.customers.slice(0, INITIAL_COLUMNS).forEach(addColumn);
  await setupStaff().catch((err) => staffFlash(err.message));
  document.body.dataset.ready = "true";
  poll();
}

start().catch((err) => setStatus(`无法启动：${err.message}`, false));
