"""Demo articles in English, Indonesian and Filipino for the demo desk's categories (`loket demo`).

Written the way each reader would write it: formal "Anda" in Indonesian, everyday
Taglish in Filipino ("i-reset", "email", "ticket"). Safe to run again: an article
that exists (same category, language and slug) is left as the admin may have edited it.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from core.models import Category, UserType

from .models import Article, Status

# (slug, {language: (title, body)}) per (user type, category) of core's demo desk.
REGISTRATION = [
    ("verification-email-never-arrived", {
        "en": ("The verification email never arrived", """\
After you sign up we send a verification email at once. If it is not in your inbox:

1. **Check your spam or junk folder**, and on Gmail the *Promotions* and *Updates* tabs.
   If it is there, mark it as "not spam" so that our next emails reach your inbox.
2. **Wait five minutes.** Some email providers hold new messages for a few minutes.
3. **Ask for a new email** on the sign-in page with *Resend verification email*.
4. **Check the address you signed up with.** A typo (for example `gmial.com`) means the
   email went somewhere else: see *I made a typo in my email address*.

Still nothing after 30 minutes? Send us your question with the address you used."""),
        "id": ("Email verifikasi tidak pernah sampai", """\
Setelah Anda mendaftar, kami langsung mengirimkan email verifikasi. Jika email tersebut
tidak ada di kotak masuk Anda:

1. **Periksa folder spam atau sampah**, dan di Gmail juga tab *Promosi* dan *Pembaruan*.
   Jika ada di sana, tandai sebagai "bukan spam" agar email kami berikutnya masuk ke kotak masuk.
2. **Tunggu lima menit.** Beberapa penyedia email menahan pesan baru selama beberapa menit.
3. **Minta email baru** di halaman masuk melalui *Kirim ulang email verifikasi*.
4. **Periksa alamat email yang Anda daftarkan.** Salah ketik (misalnya `gmial.com`) membuat
   email terkirim ke alamat lain: lihat *Saya salah mengetik alamat email*.

Belum juga menerima email setelah 30 menit? Kirimkan pertanyaan Anda beserta alamat email
yang Anda gunakan."""),
        "fil": ("Hindi dumating ang verification email", """\
Pagka-sign up mo, agad naming pinapadala ang verification email. Kung wala ito sa inbox mo:

1. **Tingnan ang spam o junk folder**, at sa Gmail, pati ang *Promotions* at *Updates* tab.
   Kung nandoon, i-mark as "not spam" para sa inbox na pumasok ang mga susunod naming email.
2. **Maghintay ng limang minuto.** May mga email provider na medyo natatagalan bago
   ipasok ang bagong message.
3. **Humingi ng bagong email** sa sign-in page gamit ang *Resend verification email*.
4. **I-check ang email address na ginamit mo.** Kapag may typo (halimbawa `gmial.com`),
   sa ibang address napunta ang email: basahin ang *Nagkamali ako ng type ng email address*.

Wala pa rin after 30 minutes? Magpadala ng ticket at isama ang email address na ginamit mo."""),
    }),
    ("verification-link-expired", {
        "en": ("My verification link has expired", """\
For your security a verification link works for **24 hours** and only once. If the page
says the link has expired or was already used:

1. Go to the sign-in page and choose *Resend verification email*.
2. Open the **newest** email and click its link; older links stop working as soon as a new
   one is sent.
3. Open the link in the same browser you use for the site. If your email app opens its own
   browser, copy the link into your usual one.

If you already verified your account, simply sign in."""),
        "id": ("Tautan verifikasi saya sudah kedaluwarsa", """\
Demi keamanan Anda, tautan verifikasi berlaku selama **24 jam** dan hanya dapat digunakan
satu kali. Jika halaman menyatakan tautan sudah kedaluwarsa atau sudah digunakan:

1. Buka halaman masuk dan pilih *Kirim ulang email verifikasi*.
2. Buka email yang **terbaru** dan klik tautannya; tautan lama tidak berlaku lagi begitu
   tautan baru dikirimkan.
3. Buka tautan di peramban yang sama dengan yang Anda gunakan untuk situs kami. Jika aplikasi
   email Anda membuka peramban sendiri, salin tautan ke peramban yang biasa Anda gunakan.

Jika akun Anda sudah terverifikasi, silakan langsung masuk."""),
        "fil": ("Expired na ang verification link ko", """\
Para sa security mo, gumagana lang ang verification link nang **24 oras** at isang beses
lang. Kung sinasabi ng page na expired na o nagamit na ang link:

1. Pumunta sa sign-in page at piliin ang *Resend verification email*.
2. Buksan ang **pinakabagong** email at i-click ang link; hindi na gagana ang mga lumang
   link kapag may bagong naipadala.
3. Buksan ang link sa parehong browser na ginagamit mo sa site. Kung sariling browser ang
   binubuksan ng email app mo, i-copy ang link at i-paste sa browser na lagi mong gamit.

Kung verified na ang account mo, mag-sign in ka na lang."""),
    }),
    ("sign-up-form-will-not-submit", {
        "en": ("The sign-up form will not submit", """\
When the *Create account* button does nothing or the form comes back:

- **Look for a message in red** next to a field: a password that is too short (at least
  10 characters), a username that is taken, or a missing date of birth.
- **Tick the box** that accepts the terms; the form cannot be sent without it.
- **Turn off ad blockers or privacy extensions** for our site: they can block the security
  check the form needs.
- **Allow cookies** for our site, then reload the page and try again.
- Try **another browser** or a private window.

If none of this helps, send us your question with a screenshot of the form."""),
        "id": ("Formulir pendaftaran tidak bisa dikirim", """\
Jika tombol *Buat akun* tidak merespons atau formulir kembali terbuka:

- **Perhatikan pesan berwarna merah** di samping kolom: kata sandi terlalu pendek (minimal
  10 karakter), nama pengguna sudah dipakai, atau tanggal lahir belum diisi.
- **Centang kotak** persetujuan syarat dan ketentuan; formulir tidak dapat dikirim tanpanya.
- **Nonaktifkan pemblokir iklan atau ekstensi privasi** untuk situs kami: ekstensi tersebut
  dapat memblokir pemeriksaan keamanan yang diperlukan formulir.
- **Izinkan cookie** untuk situs kami, lalu muat ulang halaman dan coba lagi.
- Coba **peramban lain** atau jendela penyamaran.

Jika cara di atas tidak membantu, kirimkan pertanyaan Anda beserta tangkapan layar formulir."""),
        "fil": ("Ayaw ma-submit ng sign-up form", """\
Kapag walang nangyayari sa *Create account* button o bumabalik lang ang form:

- **Hanapin ang pulang message** sa tabi ng field: masyadong maikli ang password (dapat
  10 characters pataas), may gumagamit na ng username, o kulang ang birthday.
- **I-check ang box** ng pagsang-ayon sa terms; hindi maipapadala ang form kapag wala ito.
- **I-off ang ad blocker o privacy extension** para sa site namin: puwede nilang ma-block ang
  security check na kailangan ng form.
- **I-allow ang cookies** para sa site namin, tapos i-reload ang page at subukan ulit.
- Subukan sa **ibang browser** o sa private window.

Kung wala pa ring nangyari, magpadala ng ticket kasama ang screenshot ng form."""),
    }),
    ("typo-in-email-address", {
        "en": ("I made a typo in my email address", """\
If you signed up with a wrong address (say `gmial.com` instead of `gmail.com`), the
verification email went to that wrong address and your account is not verified yet.

- **Not verified yet:** sign up again with the correct address. The unverified account is
  removed by itself after 7 days, and its username becomes free again.
- **Already verified and signed in:** change the address under *Account settings → Email*;
  we send a confirmation to the new address.

If you need the same username at once, send us your question with both addresses."""),
        "id": ("Saya salah mengetik alamat email", """\
Jika Anda mendaftar dengan alamat yang salah (misalnya `gmial.com` alih-alih `gmail.com`),
email verifikasi terkirim ke alamat yang salah tersebut dan akun Anda belum terverifikasi.

- **Belum terverifikasi:** daftar ulang dengan alamat yang benar. Akun yang belum
  terverifikasi terhapus otomatis setelah 7 hari, dan nama penggunanya dapat dipakai lagi.
- **Sudah terverifikasi dan sudah masuk:** ubah alamat di *Pengaturan akun → Email*; kami
  akan mengirimkan konfirmasi ke alamat yang baru.

Jika Anda membutuhkan nama pengguna yang sama dengan segera, kirimkan pertanyaan Anda
beserta kedua alamat email tersebut."""),
        "fil": ("Nagkamali ako ng type ng email address", """\
Kung mali ang email address na ginamit mo sa pag-sign up (halimbawa `gmial.com` imbes na
`gmail.com`), sa maling address napunta ang verification email at hindi pa verified ang
account mo.

- **Hindi pa verified:** mag-sign up ulit gamit ang tamang email. Kusang nabubura ang
  unverified account pagkalipas ng 7 araw, at puwede nang gamitin ulit ang username.
- **Verified na at naka-login ka:** palitan ang email sa *Account settings → Email*; may
  ipapadala kaming confirmation sa bagong address.

Kung kailangan mo agad ang parehong username, magpadala ng ticket at isama ang dalawang
email address."""),
    }),
    ("reset-your-password", {
        "en": ("How to reset your password", """\
1. On the sign-in page choose **Forgot password?**
2. Enter the email address of your account. We send a reset link that works for one hour.
3. Open the link and choose a new password of at least 10 characters.

No reset email? Check your spam folder and make sure you typed the address you signed up
with. If you use two-step sign-in and lost your phone, send us your question: we verify it
is you before we switch it off."""),
        "id": ("Cara mengatur ulang kata sandi", """\
1. Di halaman masuk, pilih **Lupa kata sandi?**
2. Masukkan alamat email akun Anda. Kami akan mengirimkan tautan pengaturan ulang yang
   berlaku selama satu jam.
3. Buka tautan tersebut dan buat kata sandi baru minimal 10 karakter.

Tidak menerima email pengaturan ulang? Periksa folder spam dan pastikan Anda mengetik alamat
yang Anda daftarkan. Jika Anda menggunakan verifikasi dua langkah dan kehilangan ponsel,
kirimkan pertanyaan Anda: kami akan memastikan identitas Anda sebelum menonaktifkannya."""),
        "fil": ("Paano i-reset ang password", """\
1. Sa sign-in page, piliin ang **Forgot password?**
2. Ilagay ang email address ng account mo. Magpapadala kami ng reset link na valid nang
   isang oras.
3. Buksan ang link at gumawa ng bagong password na 10 characters pataas.

Walang dumating na reset email? Tingnan ang spam folder at siguraduhing tama ang email na
tinype mo. Kung naka-two-step sign-in ka at nawala ang phone mo, magpadala ng ticket:
iche-check muna namin na ikaw talaga bago namin ito i-off."""),
    }),
]

PAYMENTS = [
    ("cancel-your-subscription", {
        "en": ("How to cancel your subscription", """\
Go to **Account settings → Subscriptions**, choose the subscription and click **Cancel
renewal**. You keep access until the end of the period you paid for, and you are not
charged again.

Paid through a billing center (the name on your card statement, such as CCBill or Epoch)?
You can also cancel on that billing center's own support page."""),
        "id": ("Cara membatalkan langganan", """\
Buka **Pengaturan akun → Langganan**, pilih langganan tersebut, lalu klik **Batalkan
perpanjangan**. Anda tetap memiliki akses hingga akhir periode yang sudah dibayar, dan
tidak akan ditagih lagi.

Membayar melalui penyedia pembayaran (nama yang tertera di tagihan kartu Anda, seperti
CCBill atau Epoch)? Anda juga dapat membatalkannya di halaman bantuan penyedia tersebut."""),
        "fil": ("Paano i-cancel ang subscription", """\
Pumunta sa **Account settings → Subscriptions**, piliin ang subscription, at i-click ang
**Cancel renewal**. May access ka pa rin hanggang matapos ang period na binayaran mo, at
hindi ka na sisingilin ulit.

Nagbayad ka through a billing center (ang pangalang nasa card statement mo, gaya ng CCBill
o Epoch)? Puwede mo rin itong i-cancel sa sariling support page ng billing center."""),
    }),
    ("charge-you-do-not-recognise", {
        "en": ("A charge on my card I do not recognise", """\
Our charges appear under the name of the **billing center** that processed them (CCBill,
Epoch, Segpay, Verotel or PayPal), not under our own name.

1. Search your email for a receipt from that billing center: it names the subscription.
2. Check **Account settings → Payment history**.
3. Still unsure? Send us your question with the date, amount and the name on the statement,
   and please do so before you dispute the charge with your bank."""),
        "id": ("Ada tagihan di kartu saya yang tidak saya kenali", """\
Tagihan kami tercantum atas nama **penyedia pembayaran** yang memprosesnya (CCBill, Epoch,
Segpay, Verotel, atau PayPal), bukan atas nama kami.

1. Cari bukti pembayaran dari penyedia tersebut di email Anda: di situ tertera langganannya.
2. Periksa **Pengaturan akun → Riwayat pembayaran**.
3. Masih ragu? Kirimkan pertanyaan Anda beserta tanggal, jumlah, dan nama yang tertera di
   tagihan, sebelum Anda mengajukan sanggahan ke bank."""),
        "fil": ("May charge sa card ko na hindi ko kilala", """\
Lumalabas ang mga charge namin sa pangalan ng **billing center** na nag-process nito
(CCBill, Epoch, Segpay, Verotel o PayPal), hindi sa pangalan namin.

1. Hanapin sa email mo ang receipt galing sa billing center na iyon: nandoon kung anong
   subscription ito.
2. Tingnan ang **Account settings → Payment history**.
3. Hindi pa rin sigurado? Magpadala ng ticket kasama ang petsa, halaga at pangalang nasa
   statement, bago ka mag-file ng dispute sa bangko mo."""),
    }),
]

ACCOUNT = [
    ("change-your-email-address", {
        "en": ("How to change your email address", """\
Go to **Account settings → Email**, enter the new address and your password, and click
**Save**. We send a confirmation link to the new address; the change takes effect when you
click it. Until then we keep writing to the old address."""),
        "id": ("Cara mengubah alamat email", """\
Buka **Pengaturan akun → Email**, masukkan alamat baru dan kata sandi Anda, lalu klik
**Simpan**. Kami akan mengirimkan tautan konfirmasi ke alamat baru; perubahan berlaku setelah
Anda mengkliknya. Sampai saat itu kami tetap mengirim email ke alamat lama."""),
        "fil": ("Paano palitan ang email address", """\
Pumunta sa **Account settings → Email**, ilagay ang bagong email at ang password mo, at
i-click ang **Save**. Magpapadala kami ng confirmation link sa bagong email; mapapalitan ito
kapag na-click mo na. Habang hindi pa, sa lumang email pa rin kami magme-message."""),
    }),
]

PAYOUTS = [
    ("payout-schedule", {
        "en": ("When will I get paid?", """\
Earnings are paid out **twice a month**: on the 7th for the 16th to the end of the previous
month, and on the 22nd for the 1st to the 15th. A payout is made when your balance is at
least **USD 50**; a smaller balance moves to the next payout.

Bank transfers take 3 to 5 business days to arrive, e-wallets usually one day."""),
        "id": ("Kapan saya menerima pembayaran?", """\
Pendapatan dibayarkan **dua kali sebulan**: tanggal 7 untuk periode tanggal 16 hingga akhir
bulan sebelumnya, dan tanggal 22 untuk periode tanggal 1 hingga 15. Pembayaran dilakukan
jika saldo Anda minimal **USD 50**; saldo yang lebih kecil dipindahkan ke pembayaran berikutnya.

Transfer bank memerlukan 3 sampai 5 hari kerja, dompet digital biasanya satu hari."""),
        "fil": ("Kailan ako makakatanggap ng payout?", """\
**Dalawang beses kada buwan** ang payout ng earnings: sa ika-7 para sa ika-16 hanggang
katapusan ng nakaraang buwan, at sa ika-22 para sa ika-1 hanggang ika-15. Magbabayad kami
kapag ang balance mo ay **USD 50** pataas; kapag kulang, sa susunod na payout na ito isasama.

Inaabot ng 3 hanggang 5 business days ang bank transfer, at kadalasan isang araw lang sa
e-wallet gaya ng GCash."""),
    }),
    ("change-your-payout-method", {
        "en": ("How to change your payout method", """\
Go to **Earnings → Payout method** and add the new bank account or e-wallet. For your
security a new method is used from the payout **after** the next one, and we email you when
it changes. The name on the account must match your verified legal name (for studios, the
company's registered name)."""),
        "id": ("Cara mengubah metode pembayaran", """\
Buka **Pendapatan → Metode pembayaran** dan tambahkan rekening bank atau dompet digital yang
baru. Demi keamanan Anda, metode baru digunakan mulai pembayaran **setelah** pembayaran
berikutnya, dan kami akan mengirimkan email setiap kali metode diubah. Nama pemilik rekening
harus sama dengan nama resmi Anda yang sudah terverifikasi (untuk studio, nama perusahaan
yang terdaftar)."""),
        "fil": ("Paano palitan ang payout method", """\
Pumunta sa **Earnings → Payout method** at idagdag ang bagong bank account o e-wallet. Para
sa security mo, magagamit ang bagong method simula sa payout **pagkatapos** ng susunod, at
magpapadala kami ng email kapag binago ito. Dapat tugma ang pangalan sa account sa verified
legal name mo (para sa studio, ang registered name ng company)."""),
    }),
]

# (user type, category slug) -> articles, in the order visitors see them.
DEMO = {
    ("member", "registration-and-login"): REGISTRATION,
    ("model", "registration-and-login"): REGISTRATION,
    ("studio", "registration-and-login"): REGISTRATION,
    ("member", "payments-and-subscriptions"): PAYMENTS,
    ("member", "account"): ACCOUNT,
    ("model", "account"): ACCOUNT,
    ("studio", "account"): ACCOUNT,
    ("model", "payouts"): PAYOUTS,
    ("studio", "payouts"): PAYOUTS,
}


def _group(user_type: str, category: str, slug: str) -> str:
    # Stable, so that a second run finds the translations the first one linked.
    return hashlib.sha256(f"demo|{user_type}|{category}|{slug}".encode()).hexdigest()[:32]


def load() -> int:
    """Add the demo articles that are missing; returns how many were added."""
    added = 0
    reviewed = dt.date.today()
    for (user_type_slug, category_slug), entries in DEMO.items():
        user_type = UserType.get_or_none(UserType.slug == user_type_slug)
        category = user_type and Category.get_or_none(
            (Category.user_type == user_type) & (Category.slug == category_slug))
        if category is None:
            continue  # the admin removed it: nothing to attach articles to
        for position, (slug, translations) in enumerate(entries, start=1):
            for language, (title, body) in translations.items():
                exists = Article.select().where(
                    (Article.category == category) & (Article.language == language)
                    & (Article.slug == slug)).exists()
                if exists:
                    continue
                Article(group=_group(user_type_slug, category_slug, slug), language=language,
                        category=category, slug=slug, title=title, body=body,
                        status=Status.PUBLISHED, position=position,
                        last_reviewed=reviewed).save()
                added += 1
    return added
