// Labels of the page itself in zh-CN and en; layer legends come from /map/legends.json (maps/palettes.py).
const STRINGS = {
  zh: {
    title: "geogrid 网格地图", commander: "指挥视图", planner: "规划视图", key: "API 密钥", save_key: "保存",
    key_needed: "请输入 API 密钥", layers: "图层", filters: "筛选", from: "起", to: "止", category: "类别",
    all: "全部", run: "批次", latest: "最新", significant: "仅显著", flagged: "仅预警", horizon: "预测期（天）", method: "方法",
    apply: "应用", plans: "方案", new_draft: "新建草案", draft_name: "草案名称", open: "打开", status: "状态",
    edit: "编辑", save: "保存", cancel: "取消", split: "切分", merge: "合并", validate: "校验", preview: "预览",
    activate: "启用", history: "历史", selected: "已选网格", none: "无", saved: "已保存", loading: "加载中…",
    conflict: "保存冲突（412）：该网格已被他人修改。已重新加载最新版本，请重新编辑。",
    problems: "问题", no_problems: "校验通过，无问题", draw_split: "在地图上画一条切分线（双击结束）",
    pick_merge: "按住 Shift 点击选择多个网格后合并", activated: "方案已启用", language: "English",
    features: "要素", error: "错误", edit_hint: "拖动顶点修改网格边界，然后保存", draw_new: "新网格",
    draw_hint: "在地图上画出新网格（单击闭合）", code: "编码", name: "名称", new_code: "新网格编码（画新网格前填写）", view_only: "只读角色：不能编辑方案",
    delete: "删除", deleted: "已删除", restore: "恢复此版本", restored: "已恢复",
  },
  en: {
    title: "geogrid grid map", commander: "Commander", planner: "Planner", key: "API key", save_key: "Save",
    key_needed: "Enter an API key", layers: "Layers", filters: "Filters", from: "From", to: "To", category: "Category",
    all: "All", run: "Run", latest: "latest", significant: "Significant only", flagged: "Flagged only",
    horizon: "Horizon (days)", method: "Method", apply: "Apply", plans: "Plans", new_draft: "New draft", draft_name: "Draft name",
    open: "Open", status: "Status", edit: "Edit", save: "Save", cancel: "Cancel", split: "Split", merge: "Merge",
    validate: "Validate", preview: "Preview", activate: "Activate", history: "History", selected: "Selected grids",
    none: "none", saved: "Saved", loading: "Loading…",
    conflict: "Save conflict (412): someone changed this grid. The latest version is reloaded; edit again.",
    problems: "Problems", no_problems: "Valid: no problems", draw_split: "Draw a split line on the map (double-click to end)",
    pick_merge: "Shift-click grids to select several, then merge", activated: "Plan activated", language: "中文",
    features: "features", error: "Error", edit_hint: "Drag vertices to reshape the grid, then save", draw_new: "New grid",
    draw_hint: "Draw the new grid on the map (click the first point to close)", code: "Code", name: "Name", new_code: "New grid's code (fill in before drawing)",
    view_only: "Read-only role: plans cannot be edited",
    delete: "Delete", deleted: "Deleted", restore: "Restore this version", restored: "Restored",
  },
};

const listeners = [];
let current = localStorage.getItem("geogrid.lang") === "en" ? "en" : "zh";

export const lang = () => current;
export const t = (key) => STRINGS[current][key] ?? key;
/** A bilingual {zh, en} label in the current language. */
export const pick = (label) => (label ? label[current] ?? label.en ?? "" : "");

export function setLang(next) {
  current = next === "en" ? "en" : "zh";
  localStorage.setItem("geogrid.lang", current);
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  translate(document);
  listeners.forEach((fn) => fn(current));
}

export const onLang = (fn) => listeners.push(fn);

/** Fill every element with data-i18n (text) or data-i18n-placeholder in `root`. */
export function translate(root) {
  root.querySelectorAll("[data-i18n]").forEach((el) => (el.textContent = t(el.dataset.i18n)));
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => (el.placeholder = t(el.dataset.i18nPlaceholder)));
}
